/**
 * The delivery-test peers themselves, checked with the real client the worker uses (nodemailer's
 * SMTP transport): each fakemx mode gives the client-side error the delivery policy will see
 * (code, responseCode, command), recordings are exact, and the blackhole makes connects hang.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { startFakeMx, type FakeMx, type FailStage } from '../helpers/fakemx.js';
import { startBlackhole } from '../helpers/blackhole.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let mx: FakeMx;
before(async () => {
  mx = await startFakeMx();
});
after(() => mx.stop());

interface SendError {
  code?: string;
  responseCode?: number;
  command?: string;
  response?: string;
  message: string;
}

const TIMEOUT_MS = 250;

function transport(port = mx.port, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    name: 'client.test',
    tls: { rejectUnauthorized: false },
    connectionTimeout: TIMEOUT_MS,
    greetingTimeout: TIMEOUT_MS,
    socketTimeout: TIMEOUT_MS,
    ...extra,
  });
}

async function send(id: string, extra: Record<string, unknown> = {}, to: string[] = ['r1@dest.test', 'r2@dest.test']) {
  const t = transport(mx.port, extra);
  try {
    return await t.sendMail({ from: 's@src.test', to, subject: id, text: 'body\n', headers: { 'X-Test-Id': id } });
  } finally {
    t.close();
  }
}

async function sendError(id: string, extra: Record<string, unknown> = {}): Promise<{ err: SendError; ms: number }> {
  const started = Date.now();
  try {
    await send(id, extra);
  } catch (err) {
    return { err: err as SendError, ms: Date.now() - started };
  }
  assert.fail(`${id}: expected the send to fail`);
}

test('accept: the message is recorded with envelope, exact bytes, X-Test-Id, HELO, TLS and addresses', async () => {
  mx.setMode('accept');
  const info = await send('acc-1', { localAddress: '127.0.0.2' });
  assert.match(info.response, /^250 2\.0\.0 Ok: queued as fakemx-\d+/);
  await mx.waitFor(1, 2000);
  const t = mx.transactions.find((x) => x.testId === 'acc-1');
  assert.ok(t);
  assert.equal(t.outcome, 'accepted');
  assert.equal(t.from, 's@src.test');
  assert.deepEqual(t.to, ['r1@dest.test', 'r2@dest.test']);
  assert.equal(t.heloName, 'client.test');
  assert.equal(t.tls, true, 'STARTTLS offered with a self-signed certificate, opportunistic TLS works');
  assert.equal(t.remoteAddress, '127.0.0.2');
  assert.equal(t.localAddress, '127.0.0.1');
  assert.equal(t.localPort, mx.port);
  assert.ok(t.connectedAt <= t.mailAt && t.mailAt <= t.dataEndAt!);
  const text = t.data!.toString('latin1');
  assert.match(text, /^X-Test-ID: acc-1\r\n[\s\S]*\r\n\r\nbody\r\n$/);
  assert.equal(t.size, t.data!.length);
  assert.equal(mx.copiesById().get('acc-1'), 1);
});

test('the certificate verifies for mx.test when the client trusts it (TLS policy "verify")', async () => {
  mx.setMode('accept');
  await send('verify-1', { tls: { ca: mx.cert, servername: 'mx.test', rejectUnauthorized: true }, requireTLS: true });
  await assert.rejects(send('verify-2', { tls: { rejectUnauthorized: true }, requireTLS: true }), /self[- ]signed/i);
});

test('DATA bytes are captured exactly: bare CR and LF kept, dot-stuffing removed (smtp-server and raw)', async () => {
  // smtp-server path (accept), then the raw path (starttlsInject serves plain SMTP until STARTTLS)
  for (const mode of ['accept', 'starttlsInject'] as const) {
    mx.setMode(mode);
    const before = mx.messages.length;
    const c = await SmtpTalk.connect(mx.port);
    await c.expect(220);
    await c.send('EHLO raw.test', 250);
    await c.send('MAIL FROM:<s@src.test>', 250);
    await c.send('RCPT TO:<r@dest.test>', 250);
    await c.send('DATA', 354);
    c.write(`X-Test-Id: raw-${mode}\r\n\r\nbare\nlf\rcr\r\n..dot\r\n.\r\n`);
    await c.expect(250);
    await c.send('QUIT', 221);
    c.close();
    await mx.waitUntil(() => mx.messages.length > before, 2000);
    const t = mx.messages.at(-1)!;
    assert.equal(t.testId, `raw-${mode}`);
    assert.equal(t.data!.toString('latin1'), `X-Test-Id: raw-${mode}\r\n\r\nbare\nlf\rcr\r\n.dot\r\n`, mode);
    assert.equal(t.heloName, 'raw.test');
  }
});

const FAILS: [kind: 'tempfail' | 'permfail', at: FailStage, code: string, responseCode: number, command: string][] = [
  ['tempfail', 'MAIL', 'EENVELOPE', 450, 'MAIL FROM'],
  ['tempfail', 'RCPT', 'EENVELOPE', 450, 'RCPT TO'],
  ['tempfail', 'DATA', 'EENVELOPE', 450, 'DATA'],
  ['tempfail', 'DOT', 'EMESSAGE', 450, 'DATA'],
  ['permfail', 'MAIL', 'EENVELOPE', 550, 'MAIL FROM'],
  ['permfail', 'RCPT', 'EENVELOPE', 550, 'RCPT TO'],
  ['permfail', 'DATA', 'EENVELOPE', 550, 'DATA'],
  ['permfail', 'DOT', 'EMESSAGE', 550, 'DATA'],
];

test('tempfail and permfail at MAIL, RCPT, DATA and DOT give the client the scripted reply', async () => {
  for (const [kind, at, code, responseCode, command] of FAILS) {
    mx.setMode({ kind, at });
    const { err } = await sendError(`${kind}-${at}`);
    const label = `${kind} at ${at}: ${err.message}`;
    assert.equal(err.code, code, label);
    assert.equal(err.responseCode, responseCode, label);
    assert.equal(err.command, command, label);
    assert.equal(err.response, kind === 'tempfail' ? '450 4.2.0 greylisted, try again later' : '550 5.1.1 user unknown', label);
  }
  // a custom reply, and the DOT failure recorded with the message (not a copy)
  mx.setMode({ kind: 'tempfail', at: 'DOT', reply: '451 4.7.1 please slow down' });
  const { err } = await sendError('custom-dot');
  assert.equal(err.response, '451 4.7.1 please slow down');
  const t = mx.messages.find((x) => x.testId === 'custom-dot');
  assert.equal(t?.outcome, 'rejected');
  assert.equal(t?.reply, '451 4.7.1 please slow down');
  assert.equal(mx.copiesById().get('custom-dot'), undefined);
  assert.throws(() => mx.setMode({ kind: 'tempfail', at: 'MAIL', reply: '550 5.0.0 not temporary' }), /4xx/);
  mx.setMode('accept');
});

test('one recipient can be refused while the others are accepted', async () => {
  mx.setMode('accept');
  mx.setRecipientReply('r2@dest.test', '550 5.1.1 no such user');
  try {
    const info = await send('one-rcpt');
    assert.deepEqual(info.accepted, ['r1@dest.test']);
    assert.deepEqual(info.rejected, ['r2@dest.test']);
    const t = mx.messages.find((x) => x.testId === 'one-rcpt')!;
    assert.deepEqual(t.to, ['r1@dest.test']);
    assert.deepEqual(t.refused, [{ address: 'r2@dest.test', reply: '550 5.1.1 no such user' }]);
  } finally {
    mx.setRecipientReply('r2@dest.test', undefined);
  }
});

test('dropAfterDot: the whole message arrives, the socket closes with no reply (a possible duplicate)', async () => {
  mx.setMode({ kind: 'dropAfterDot', firstAttemptPerId: true });
  const { err } = await sendError('drop-1');
  assert.equal(err.code, 'ECONNECTION');
  assert.equal(err.responseCode, undefined);
  // firstAttemptPerId: the retry of the same id is accepted
  await send('drop-1');
  assert.deepEqual(mx.messages.filter((x) => x.testId === 'drop-1').map((x) => x.outcome), ['dropped', 'accepted']);
  assert.equal(mx.copiesById().get('drop-1'), 2, 'the dropped copy counts: the MX may have delivered it');
  mx.setMode('accept');
});

test('delayDot holds the final reply', async () => {
  mx.setMode({ kind: 'delayDot', ms: 300 });
  const started = Date.now();
  await send('delay-1', { socketTimeout: 2000 });
  assert.ok(Date.now() - started >= 290);
  mx.setMode('accept');
});

test('silent: TCP is accepted and no greeting ever comes', async () => {
  mx.setMode('silent');
  const conns = mx.connections.length;
  // The socket timer is set longer than the greeting timer: with both equal, a busy machine
  // lets either fire first and the message differs.
  const { err, ms } = await sendError('silent-1', { socketTimeout: TIMEOUT_MS * 2 });
  assert.equal(err.code, 'ETIMEDOUT');
  assert.match(err.message, /Greeting never received/);
  assert.ok(ms < TIMEOUT_MS * 3, `${ms} ms`);
  assert.equal(mx.connections.length, conns + 1);
  assert.equal(mx.connections.at(-1)!.server, 'raw');
  mx.setMode('accept');
});

test('stallAt leaves a command unanswered; a stall at the dot still counts the message as a copy', async () => {
  for (const at of ['EHLO', 'MAIL', 'RCPT', 'DATA', 'DOT'] as const) {
    mx.setMode({ kind: 'stallAt', at });
    const { err, ms } = await sendError(`stall-${at}`);
    assert.equal(err.code, 'ETIMEDOUT', `${at}: ${err.message}`);
    assert.ok(ms < TIMEOUT_MS * 3, `${at}: ${ms} ms`);
    assert.match(mx.connections.at(-1)!.commands.at(-1)!, new RegExp(`stalled at ${at}`));
  }
  const t = mx.messages.find((x) => x.testId === 'stall-DOT');
  assert.equal(t?.outcome, 'stalled');
  assert.equal(mx.copiesById().get('stall-DOT'), 1);
  mx.setMode('accept');
});

test('starttlsInject: "220 go" and "250 injected" come in one write, then TLS works', async () => {
  mx.setMode('starttlsInject');
  const socket = net.connect(mx.port, '127.0.0.1');
  socket.on('error', () => undefined);
  const chunks: string[] = [];
  const nextChunk = () =>
    new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no data')), 2000);
      socket.once('data', (d: Buffer) => {
        clearTimeout(t);
        chunks.push(d.toString('latin1'));
        resolve(d.toString('latin1'));
      });
    });
  assert.match(await nextChunk(), /^220 /);
  socket.write('EHLO raw.test\r\n');
  assert.match(await nextChunk(), /250-STARTTLS/);
  socket.write('STARTTLS\r\n');
  assert.equal(await nextChunk(), '220 2.0.0 go\r\n250 injected\r\n');
  const secure = tls.connect({ socket, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', () => resolve());
    secure.once('error', reject);
  });
  secure.destroy();

  // nodemailer (the worker's client) must not take the injected 250 as its EHLO reply: it
  // sends a fresh EHLO inside TLS before MAIL
  await send('inject-1');
  const conn = mx.connections.at(-1)!;
  assert.equal(conn.tls, true);
  const after = conn.commands.filter((c) => c.startsWith('tls:'));
  assert.match(after[0]!, /^tls:EHLO /, conn.commands.join(' | '));
  const t = mx.messages.find((x) => x.testId === 'inject-1');
  assert.equal(t?.tls, true);
  assert.equal(t?.outcome, 'accepted');
  mx.setMode('accept');
});

test('maxSizeBytes advertises SIZE and refuses a bigger message with 552', async () => {
  const small = await startFakeMx({ maxSizeBytes: 1000, tls: false });
  try {
    const c = await SmtpTalk.connect(small.port);
    await c.expect(220);
    const ehlo = await c.send('EHLO raw.test', 250);
    assert.match(ehlo.text, /SIZE 1000/);
    assert.doesNotMatch(ehlo.text, /STARTTLS/);
    c.close();
    const t = transport(small.port);
    try {
      await assert.rejects(t.sendMail({ from: 's@src.test', to: 'r@dest.test', text: 'x'.repeat(5000) }), (e: SendError) => e.responseCode === 552);
    } finally {
      t.close();
    }
  } finally {
    await small.stop();
  }
});

test('stop() closes connections that are still open, and the port is free afterwards', async () => {
  const m2 = await startFakeMx({ mode: 'silent' });
  const c = await SmtpTalk.connect(m2.port);
  await m2.waitForConnections(1, 2000);
  await m2.stop();
  await c.waitClosed(2000);
  await assert.rejects(SmtpTalk.connect(m2.port), /ECONNREFUSED/);
});

test('blackhole: a connect neither succeeds nor is refused; the client times out', async () => {
  const bh = await startBlackhole();
  try {
    const started = Date.now();
    const t = transport(bh.port, { connectionTimeout: 300 });
    try {
      await assert.rejects(t.sendMail({ from: 's@src.test', to: 'r@dest.test', text: 'x' }), (e: SendError) => e.code === 'ETIMEDOUT' && /Connection timeout/.test(e.message));
    } finally {
      t.close();
    }
    const ms = Date.now() - started;
    assert.ok(ms >= 290 && ms < 1500, `${ms} ms`);

    // a bare socket sees no 'connect' and no error within the window
    const s = net.connect(bh.port, '127.0.0.1');
    const outcome = await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('pending'), 300);
      s.once('connect', () => resolve('connected'));
      s.once('error', (e) => resolve(`error ${e.message}`));
      s.once('close', () => clearTimeout(timer));
    });
    s.destroy();
    assert.equal(outcome, 'pending');
  } finally {
    await bh.stop();
  }
  assert.throws(() => process.kill(bh.pid, 0), /ESRCH/, 'the python child is gone');
});
