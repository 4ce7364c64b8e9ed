/**
 * TLS and several listeners side by side: STARTTLS is offered when a key and cert are set, AUTH
 * waits for it, implicit TLS works on an smtps interface, and each interface keeps its own size
 * limit and auth rule.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../lib/accept/passwords.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/test-cert.js';

const PASSWORD = 's3cret pass';
const MAIN_MAX = 64 * 1024;
const SMTPS_MAX = 32 * 1024;
const SUBMISSION_MAX = 16 * 1024;

let m: TestMaster;
let smtpsPort: number;
let submissionPort: number;
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  m = await startMaster({
    api: { enabled: false },
    smtp: {
      key,
      cert,
      maxSize: MAIN_MAX,
      // nobody is trusted on the main and smtps listeners: every client logs in
      trustedNetworks: [],
      users: { alice: await hashPassword(PASSWORD) },
      interfaces: {
        smtps: { port: 0, secure: true, maxSize: SMTPS_MAX },
        submission: { port: 0, auth: 'always', maxSize: SUBMISSION_MAX, trustedNetworks: ['127.0.0.0/8'] },
      },
    },
  });
  smtpsPort = m.port('smtp.interfaces.smtps');
  submissionPort = m.port('smtp.interfaces.submission');
});
after(() => m.stop());

const insecureTls = { rejectUnauthorized: false };
const alice = { user: 'alice', pass: PASSWORD };

function idOf(response: string): string {
  const id = /queued as ([0-9a-f]+)/.exec(response)?.[1];
  assert.ok(id, response);
  return id;
}

/** EHLO, STARTTLS, and a raw SMTP client over the TLS socket (which has said nothing yet). */
async function startTls(port: number): Promise<SmtpTalk> {
  const plain = await SmtpTalk.connect(port);
  await plain.expect(220);
  await plain.send('EHLO client.test', 250);
  await plain.send('STARTTLS', 220);
  plain.socket.removeAllListeners('data');
  const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ socket: plain.socket, ...insecureTls }, () => resolve(s));
    s.once('error', reject);
  });
  return SmtpTalk.wrap(secure);
}

test('STARTTLS is offered, AUTH waits for it (538), and after TLS AUTH works', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  assert.match(ehlo.text, /STARTTLS/);
  assert.doesNotMatch(ehlo.text, /AUTH/);
  const r = await c.send('AUTH PLAIN ' + Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'), 538);
  assert.match(r.text, /^538 5\.7\.11 /);
  c.close();

  const s = await startTls(m.smtpPort);
  const ehlo2 = await s.send('EHLO client.test', 250);
  assert.match(ehlo2.text, /AUTH PLAIN LOGIN/);
  assert.doesNotMatch(ehlo2.text, /STARTTLS/);
  await s.send('AUTH PLAIN ' + Buffer.from(`\0alice\0${PASSWORD}`).toString('base64'), 235);
  await s.send('QUIT', 221);
  s.close();
});

test('nodemailer with requireTLS and AUTH sends over STARTTLS; the origin records ESMTPSA', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, secure: false, requireTLS: true, tls: insecureTls, auth: alice });
  const info = await transport.sendMail({ from: 'a@x.test', to: 'r@y.test', subject: 'tls', text: 'over TLS' });
  const meta = await m.master.store.getMeta(idOf(info.response));
  assert.equal(meta?.origin.transmissionType, 'ESMTPSA');
  assert.equal(meta?.origin.user, 'alice');
  assert.equal(meta?.origin.interface, 'smtp');

  // without AUTH the untrusted client is refused, TLS or not
  const anonymous = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, requireTLS: true, tls: insecureTls });
  await assert.rejects(anonymous.sendMail({ from: 'a@x.test', to: 'r@y.test', text: 'x' }), (err: { responseCode?: number }) => err.responseCode === 530);
});

test('smtps (implicit TLS): nodemailer secure:true sends; a plaintext client gets no greeting', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpsPort, secure: true, tls: insecureTls, auth: alice });
  const info = await transport.sendMail({ from: 'a@x.test', to: 'r@y.test', subject: 'smtps', text: 'implicit' });
  const meta = await m.master.store.getMeta(idOf(info.response));
  assert.equal(meta?.origin.interface, 'smtp.interfaces.smtps');
  assert.equal(meta?.origin.transmissionType, 'ESMTPSA');

  // a client speaking plain SMTP to the TLS port never sees "220" in clear
  const raw = net.connect({ port: smtpsPort, host: '127.0.0.1' });
  const seen: Buffer[] = [];
  raw.on('data', (d) => seen.push(d));
  raw.on('error', () => undefined);
  raw.write('EHLO client.test\r\n');
  await new Promise((resolve) => raw.once('close', resolve));
  assert.doesNotMatch(Buffer.concat(seen).toString('latin1'), /^220/);
});

test('each interface announces and enforces its own maxSize', async () => {
  const sizes: [number, number][] = [
    [m.smtpPort, MAIN_MAX],
    [smtpsPort, SMTPS_MAX],
    [submissionPort, SUBMISSION_MAX],
  ];
  for (const [port, max] of sizes) {
    const c =
      port === smtpsPort
        ? SmtpTalk.wrap(await tlsConnect(port))
        : await SmtpTalk.connect(port);
    await c.expect(220);
    const ehlo = await c.send('EHLO client.test', 250);
    assert.match(ehlo.text, new RegExp(`SIZE ${max}\\b`), `port ${port}`);
    c.close();
  }
  // a 40 KB message fits the main listener and is too big for smtps
  const text = ('y'.repeat(76) + '\n').repeat(Math.ceil((40 * 1024) / 77));
  const main = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, requireTLS: true, tls: insecureTls, auth: alice });
  idOf((await main.sendMail({ from: 'a@x.test', to: 'r@y.test', text })).response);
  const smtps = nodemailer.createTransport({ host: '127.0.0.1', port: smtpsPort, secure: true, tls: insecureTls, auth: alice });
  await assert.rejects(smtps.sendMail({ from: 'a@x.test', to: 'r@y.test', text }), (err: { responseCode?: number }) => err.responseCode === 552);
});

test('submission (auth = "always"): even a loopback client must log in, then it may send', async () => {
  const c = await SmtpTalk.connect(submissionPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<a@x.test>', 530);
  c.close();

  // loopback is a trusted network there, so AUTH in clear is allowed
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: submissionPort, ignoreTLS: true, auth: alice });
  const info = await transport.sendMail({ from: 'alice@x.test', to: 'r@y.test', subject: 'sub', text: 'auth always' });
  const meta = await m.master.store.getMeta(idOf(info.response));
  assert.equal(meta?.origin.user, 'alice');
  assert.equal(meta?.origin.interface, 'smtp.interfaces.submission');

  const wrong = nodemailer.createTransport({ host: '127.0.0.1', port: submissionPort, ignoreTLS: true, auth: { user: 'alice', pass: 'nope' } });
  await assert.rejects(wrong.sendMail({ from: 'a@x.test', to: 'r@y.test', text: 'x' }), (err: { responseCode?: number }) => err.responseCode === 535);
});

function tlsConnect(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', ...insecureTls }, () => resolve(s));
    s.once('error', reject);
  });
}
