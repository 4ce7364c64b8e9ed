import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import nodemailer from 'nodemailer';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { GTUBE, rspamdInstalled, startRspamd, type TestRspamd } from '../helpers/rspamd.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

// A real Rspamd (Debian package "rspamd"). CI installs it; elsewhere the file is skipped with a
// reason rather than failing on a machine that lacks it.
const skip = !rspamdInstalled() && process.env.CI !== 'true' ? 'rspamd is not installed (apt-get install rspamd)' : false;

let rspamd: TestRspamd;
let m: TestMaster;
const masters: TestMaster[] = [];
let readyMs = 0;

before(async () => {
  if (skip) return;
  const t0 = Date.now();
  rspamd = await startRspamd();
  readyMs = Date.now() - t0;
  m = await startMaster({
    zones: { suspect: { processes: 0 } },
    plugins: { 'core/rspamd': { enabled: ['main'], url: rspamd.url, timeout: '5s', actions: { greylist: 'zone:suspect' } } },
  });
  masters.push(m);
});
after(async () => {
  for (const x of masters) await x.stop();
  await rspamd?.stop();
});

async function submit(port: number, body: string, subject = 'spam check'): Promise<{ code: number; text: string }> {
  const c = await SmtpTalk.connect(port);
  try {
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    await c.send('MAIL FROM:<a@src.test>', 250);
    await c.send('RCPT TO:<r@dest.test>', 250);
    await c.send('DATA', 354);
    c.write(`From: a@src.test\r\nTo: r@dest.test\r\nSubject: ${subject}\r\n\r\n${body}\r\n.\r\n`);
    const r = await c.next();
    assert.ok(r, 'a reply');
    return r;
  } finally {
    c.close();
  }
}
const idOf = (text: string) => /queued as (\w+)/.exec(text)?.[1] ?? '';

test('core/rspamd: the GTUBE test string is rejected with 550 5.7.1 (SMTP and POST /send); a plain message passes untagged', { skip }, async () => {
  assert.ok(readyMs < 30_000, `rspamd took ${readyMs} ms to start`);
  const spam = await submit(m.smtpPort, `This is a test.\r\n${GTUBE}\r\n`);
  assert.equal(spam.text, '550 5.7.1 Message rejected as spam');

  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await assert.rejects(t.sendMail({ from: 'a@src.test', to: 'r@dest.test', subject: 'gtube', text: GTUBE }), /550 5\.7\.1 Message rejected as spam/);
  const api = await fetch(`${m.api}/send`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ from: 'a@src.test', to: 'r@dest.test', subject: 'gtube', text: GTUBE }) });
  assert.equal(api.status, 400);
  assert.match(((await api.json()) as { message: string }).message, /550 5\.7\.1 Message rejected as spam/);

  const ham = await submit(m.smtpPort, 'Hello Bob, the minutes of the meeting are attached.\r\nRegards\r\n');
  assert.equal(ham.code, 250, ham.text);
  const meta = await m.master.store.getMeta(idOf(ham.text));
  assert.ok(meta);
  assert.doesNotMatch(meta.headers, /X-Spam/i);
});

test('"add header" tags the stored message with X-Spam-Flag and X-Spam-Status', { skip }, async () => {
  const r = await submit(m.smtpPort, 'Buy now: SLUICE-TAG-ME\r\n');
  assert.equal(r.code, 250, r.text);
  const headers = (await m.master.store.getMeta(idOf(r.text)))!.headers.replace(/\r\n[ \t]+/g, ' ');
  assert.match(headers, /^X-Spam-Flag: YES\r\n/m);
  assert.match(headers, /^X-Spam-Status: Yes, score=7\.00 required=15\.00 action="add header" tests=\[SLUICE_TEST_TAG\]\r\n/m);
  assert.match(headers, /^Received: [^]*^X-Spam-Flag/m, 'our tags go below our Received header');
});

test('an action mapped to zone:NAME routes the message to that zone', { skip }, async () => {
  const r = await submit(m.smtpPort, 'Somewhat odd: SLUICE-SUSPECT\r\n');
  assert.equal(r.code, 250, r.text);
  const rows = await m.master.store.getRows(idOf(r.text));
  assert.deepEqual(rows.map((row) => row.zone), ['suspect']);
  const plain = await submit(m.smtpPort, 'nothing odd here\r\n');
  assert.deepEqual((await m.master.store.getRows(idOf(plain.text))).map((row) => row.zone), ['default']);
});

test('Rspamd down: failOpen = true accepts unchecked, failOpen = false answers 451 4.7.1', async () => {
  // a port where nothing listens: the one of a server we open and close again
  const closed = await new Promise<number>((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
  const url = `http://127.0.0.1:${closed}`;
  const open = await startMaster({ plugins: { 'core/rspamd': { enabled: ['main'], url, failOpen: true } } });
  masters.push(open);
  const shut = await startMaster({ plugins: { 'core/rspamd': { enabled: ['main'], url, failOpen: false } } });
  masters.push(shut);
  const a = await submit(open.smtpPort, `${GTUBE}\r\n`);
  assert.equal(a.code, 250, 'accepted unchecked');
  const b = await submit(shut.smtpPort, 'plain\r\n');
  assert.equal(b.text, '451 4.7.1 Spam check unavailable, try again later');
});
