import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let m: TestMaster;
before(async () => {
  // no delivery worker for "bulk" (the test reads rows back before any attempt could change them)
  m = await startMaster({ zones: { bulk: { processes: 0, recipientDomains: ['bulk.test'] } } });
});
after(() => m.stop());

test('nodemailer submits over SMTP and the message reads back through GET /message/:id', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, secure: false, ignoreTLS: true });
  const info = await transport.sendMail({ from: 'a@src.test', to: ['x@dest.test', 'y@bulk.test'], subject: 'héllo', text: 'body' });
  const id = /queued as ([0-9a-f]+)/.exec(info.response)?.[1];
  assert.ok(id, info.response);
  assert.match(info.response, /^250 /);
  const res = await fetch(`${m.api}/message/${id}`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as { meta: { subject: string; from: string }; messages: { recipient: string; zone: string; seq: string; status: string }[] };
  assert.equal(body.meta.subject, 'héllo');
  assert.equal(body.meta.from, 'a@src.test');
  assert.deepEqual(
    body.messages.map((r) => [r.seq, r.recipient, r.zone, r.status]),
    [
      ['001', 'x@dest.test', 'default', 'QUEUED'],
      ['002', 'y@bulk.test', 'bulk', 'QUEUED'],
    ],
  );
});

test('a raw socket session gets the right codes, and DATA without RCPT is 503', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  for (const ext of ['SIZE', '8BITMIME', 'SMTPUTF8', 'PIPELINING', 'ENHANCEDSTATUSCODES']) assert.match(ehlo.text, new RegExp(ext));
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('DATA', 503);
  await c.send('RCPT TO:<r@dest.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: raw\r\n\r\nline\r\n.\r\n');
  const r = await c.expect(250);
  assert.match(r.text, /queued as [0-9a-f]{22}/);
  await c.send('QUIT', 221);
  c.close();
});

test('GET /message/:id and /queue/:zone answer 404 with a JSON error for unknown ids and zones', async () => {
  for (const url of ['/message/ffffffffffffffffffffff', '/message/nope', '/queue/nosuchzone']) {
    const res = await fetch(m.api + url);
    assert.equal(res.status, 404, url);
    const body = (await res.json()) as { error: string; message: string };
    assert.equal(body.error, 'NotFound');
    assert.ok(body.message.length > 0);
  }
});
