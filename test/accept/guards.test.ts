/**
 * The guards of GuardedSmtpServer, on real sockets: a command line must arrive within
 * commandTimeout (slowloris), a DATA transfer within dataTimeout, a session within
 * sessionTimeout — each in plaintext and inside STARTTLS — and the (N+1)th connection from one
 * IP gets 421 4.7.0. Each scenario talks from its own 127.0.0.x address so they run at once
 * without sharing the per-IP count.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk, type Reply } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/test-cert.js';

const COMMAND_TIMEOUT_MS = 1000;
const DATA_TIMEOUT_MS = 1500;
const SESSION_TIMEOUT_MS = 2500;
const TRICKLE_EVERY_MS = 300;
const MAX_PER_IP = 3;
/** how late a deadline may fire and still pass (timers, a loaded machine) */
const SLACK_MS = 1500;

let m: TestMaster;
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  m = await startMaster({
    api: { enabled: false },
    smtp: {
      key,
      cert,
      commandTimeout: COMMAND_TIMEOUT_MS,
      dataTimeout: DATA_TIMEOUT_MS,
      sessionTimeout: SESSION_TIMEOUT_MS,
      maxConnectionsPerIp: MAX_PER_IP,
      interfaces: {
        smtps: { port: 0, secure: true },
        proxied: { port: 0, proxyProtocol: ['127.0.0.0/8'] },
      },
    },
  });
});
after(() => m.stop());

/** A session from its own source address, plain or after STARTTLS, greeted and EHLO'd. */
async function open(localAddress: string, viaTls: boolean): Promise<SmtpTalk> {
  const plain = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', localAddress);
  await plain.expect(220);
  await plain.send('EHLO client.test', 250);
  if (!viaTls) return plain;
  const c = await plain.startTls();
  await c.send('EHLO client.test', 250);
  return c;
}

/** Writes one byte (or line) every TRICKLE_EVERY_MS until the server closes; returns its last reply. */
async function trickle(c: SmtpTalk, piece: () => string, boundMs: number, started = Date.now()): Promise<{ reply: Reply | undefined; tookMs: number }> {
  const timer = setInterval(() => {
    if (!c.closed) c.write(piece());
  }, TRICKLE_EVERY_MS);
  try {
    const reply = await c.next(boundMs);
    await c.waitClosed(boundMs);
    return { reply, tookMs: Date.now() - started };
  } finally {
    clearInterval(timer);
    c.close();
  }
}

function assertTimedOut(r: { reply: Reply | undefined; tookMs: number }, deadlineMs: number, what: RegExp) {
  assert.ok(r.reply, 'a reply before the close');
  assert.match(r.reply.text, /^421 4\.4\.2 /);
  assert.match(r.reply.text, what);
  assert.ok(r.tookMs >= deadlineMs - 100 && r.tookMs < deadlineMs + SLACK_MS, `closed after ${r.tookMs} ms`);
}

describe('deadlines', { concurrency: true }, () => {
  for (const [n, viaTls] of [
    [0, false],
    [1, true],
  ] as const) {
    const tag = viaTls ? 'after STARTTLS' : 'plaintext';

    test(`commandTimeout closes a client trickling a line without a newline (${tag})`, async () => {
      const c = await open(`127.0.1.${n + 1}`, viaTls);
      assertTimedOut(await trickle(c, () => 'x', COMMAND_TIMEOUT_MS * 4), COMMAND_TIMEOUT_MS, /Command/);
    });

    test(`dataTimeout closes a client trickling its DATA (${tag})`, async () => {
      const c = await open(`127.0.2.${n + 1}`, viaTls);
      await c.send('MAIL FROM:<a@x.test>', 250);
      await c.send('RCPT TO:<r@y.test>', 250);
      await c.send('DATA', 354);
      // whole lines: the command deadline does not apply, only the data one
      assertTimedOut(await trickle(c, () => 'line\r\n', DATA_TIMEOUT_MS * 4), DATA_TIMEOUT_MS, /Data/);
    });

    test(`sessionTimeout ends a session of busy but endless NOOPs (${tag})`, async () => {
      const connectedAt = Date.now();
      const c = await open(`127.0.3.${n + 1}`, viaTls);
      const r = await trickle(c, () => 'NOOP\r\n', SESSION_TIMEOUT_MS * 4, connectedAt);
      // the NOOP replies come first; the last reply is the 421
      let last = r.reply;
      while (last && last.code === 250) last = await c.next(1);
      assertTimedOut({ reply: last, tookMs: r.tookMs }, SESSION_TIMEOUT_MS, /Session/);
    });
  }

  for (const [name, listener, first] of [
    ['an implicit TLS handshake', 'smtp.interfaces.smtps', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01])],
    ['a PROXY header', 'smtp.interfaces.proxied', Buffer.from('PROXY TCP4 ')],
  ] as const) {
    test(`${name} trickled a byte at a time is cut off at commandTimeout`, async () => {
      const c = await SmtpTalk.connect(m.port(listener), '127.0.0.1', `127.0.6.${first[0]}`);
      c.write(first);
      const r = await trickle(c, () => '1', COMMAND_TIMEOUT_MS * 4);
      assert.equal(r.reply, undefined, 'nothing is said before the session starts');
      assert.ok(r.tookMs >= COMMAND_TIMEOUT_MS - 100 && r.tookMs < COMMAND_TIMEOUT_MS + SLACK_MS, `closed after ${r.tookMs} ms`);
    });
  }

  test('a client that sends its lines in time is not cut off by commandTimeout', async () => {
    const c = await open('127.0.4.1', false);
    for (let i = 0; i < 3; i++) {
      // each line is complete well within the deadline, though the pauses add up past it
      c.write('NO');
      await new Promise((resolve) => setTimeout(resolve, COMMAND_TIMEOUT_MS / 2));
      await c.send('OP', 250);
    }
    c.close();
  });

  test(`the connection over maxConnectionsPerIp (${MAX_PER_IP}) gets 421 4.7.0; a freed slot is reusable`, async () => {
    const ip = '127.0.5.1';
    const held: SmtpTalk[] = [];
    for (let i = 0; i < MAX_PER_IP; i++) {
      const c = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', ip);
      await c.expect(220);
      held.push(c);
    }
    const over = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', ip);
    const r = await over.expect(421);
    assert.match(r.text, /^421 4\.7\.0 /);
    await over.waitClosed();
    // another address is not affected
    const other = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', '127.0.5.2');
    await other.expect(220);
    other.close();
    // closing one frees a slot
    const leaving = held.pop()!;
    await leaving.send('QUIT', 221);
    await leaving.waitClosed();
    // the server counts the close a moment after the client sees it: poll, bounded
    let greeted = false;
    for (let attempt = 0; attempt < 50 && !greeted; attempt++) {
      const again = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', ip);
      const reply = await again.next();
      greeted = reply?.code === 220;
      if (greeted) {
        again.close();
      } else {
        assert.equal(reply?.code, 421);
        await again.waitClosed();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    assert.ok(greeted, 'the freed slot came back');
    for (const c of held) c.close();
  });
});
