/**
 * Every reply the receiver promises (lib/inbound/receiver.ts), over a real socket: relaying
 * refused and the session goes on, DATA without a recipient, sizes, recipient count, malformed
 * addresses, the blocklist (re-read without a restart), no AUTH, STARTTLS and the TLS record,
 * envelope recipients kept, one message in several inboxes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { waitFor } from '../helpers/delivery-kit.js';
import { rawMessage, startReceiver, type TestReceiver } from '../helpers/inbound.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { testCert } from '../helpers/test-cert.js';

const MAX_SIZE = 64 * 1024;
const MAX_RCPTS = 3;

let r: TestReceiver;
let tlsReceiver: TestReceiver;
before(async () => {
  const { keyFile: key, certFile: cert } = testCert();
  [r, tlsReceiver] = await Promise.all([startReceiver({ maxSize: MAX_SIZE, maxRecipients: MAX_RCPTS }), startReceiver({ key, cert })]);
});
after(() => Promise.all([r.stop(), tlsReceiver.stop()]));

async function listed(address: string): Promise<{ id: string; envelope: { to: string[] } }[]> {
  const { body } = await r.json<{ messages: { id: string; envelope: { to: string[] } }[] }>(`/api/inboxes/${address}/messages`);
  return body.messages;
}

test('EHLO offers SIZE, PIPELINING, 8BITMIME, SMTPUTF8 and ENHANCEDSTATUSCODES, and never AUTH', async () => {
  const c = await SmtpTalk.connect(r.port);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  assert.match(ehlo.text, new RegExp(`SIZE ${MAX_SIZE}`));
  for (const ext of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES']) assert.match(ehlo.text, new RegExp(ext));
  assert.doesNotMatch(ehlo.text, /AUTH|STARTTLS/, 'no login on this door, no STARTTLS without a key');
  assert.match((await c.send('AUTH PLAIN AGZvbwBiYXI=', 503)).text, /^503 5\.5\.1 /);
  c.close();
});

test('another domain gets 550 5.7.1, and a later recipient at ours in the same transaction still works', async () => {
  const c = await r.session();
  await c.send('MAIL FROM:<a@src.test>', 250);
  assert.match((await c.send('RCPT TO:<victim@elsewhere.test>', 550)).text, /^550 5\.7\.1 /);
  await c.send('RCPT TO:<kept@inbox.test>', 250);
  await c.send('DATA', 354);
  c.write(rawMessage({ Subject: 'mixed' }, 'body') + '\r\n.\r\n');
  const id = /queued as (\S+)/.exec((await c.expect(250)).text)![1]!;
  await c.send('QUIT', 221);
  const [msg] = await listed('kept@inbox.test');
  assert.equal(msg?.id, id);
  assert.deepEqual(msg?.envelope.to, ['kept@inbox.test'], 'only the accepted recipient');
});

test('DATA with no accepted recipient is 503', async () => {
  const c = await r.session();
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('RCPT TO:<x@elsewhere.test>', 550);
  assert.match((await c.send('DATA', 503)).text, /^503 /);
  c.close();
});

test('SIZE over the limit is 552 5.3.4 at MAIL; an undeclared oversize message is 552 after the dot, nothing is stored, the session goes on', async () => {
  const c = await r.session();
  assert.match((await c.send(`MAIL FROM:<a@src.test> SIZE=${MAX_SIZE + 1}`, 552)).text, /^552 5\.3\.4 /);
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('RCPT TO:<big@inbox.test>', 250);
  await c.send('DATA', 354);
  const line = 'x'.repeat(998) + '\r\n';
  c.write('Subject: big\r\n\r\n' + line.repeat(Math.ceil((MAX_SIZE * 2) / line.length)) + '.\r\n');
  assert.match((await c.expect(552)).text, /^552 5\.3\.4 /);
  assert.equal((await listed('big@inbox.test')).length, 0);
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('RCPT TO:<big@inbox.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: small\r\n\r\nfits\r\n.\r\n');
  await c.expect(250);
  await c.send('QUIT', 221);
  assert.equal((await listed('big@inbox.test')).length, 1);
});

test('one recipient over maxRecipients gets 452 4.5.3; the ones before it get the message', async () => {
  const c = await r.session();
  await c.send('MAIL FROM:<a@src.test>', 250);
  for (let i = 0; i < MAX_RCPTS; i++) await c.send(`RCPT TO:<many${i}@inbox.test>`, 250);
  assert.match((await c.send('RCPT TO:<many9@inbox.test>', 452)).text, /^452 4\.5\.3 /);
  await c.send('DATA', 354);
  c.write(rawMessage({ Subject: 'many' }, 'b') + '\r\n.\r\n');
  await c.expect(250);
  c.close();
  for (let i = 0; i < MAX_RCPTS; i++) assert.equal((await listed(`many${i}@inbox.test`)).length, 1);
  assert.equal((await listed('many9@inbox.test')).length, 0);
});

test('a malformed address at our domain is 553 5.1.3, a routed one 550 5.7.1, and the transaction goes on', async () => {
  const c = await r.session();
  await c.send('MAIL FROM:<a@src.test>', 250);
  assert.match((await c.send(`RCPT TO:<${'l'.repeat(65)}@inbox.test>`, 553)).text, /^553 5\.1\.3 /);
  assert.match((await c.send('RCPT TO:<u%evil.test@inbox.test>', 550)).text, /^550 5\.7\.1 /);
  await c.send('RCPT TO:<fine@inbox.test>', 250);
  c.close();
});

test('a blocklisted IP gets 554 5.7.1 at connect and a blocklisted sender domain at MAIL, each with why; the file is re-read without a restart', async () => {
  const file = path.join(r.m.dir, 'blocklist.txt');
  writeFileSync(file, '# test entries\n127.0.0.77\nspam.test\nnot an entry at all!\n');
  await waitFor(async () => {
    const c = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.77');
    const reply = await c.next();
    c.close();
    return reply?.code === 554;
  }, 5000, 'the blocklist took effect');
  const c = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.77');
  const banner = await c.next();
  assert.match(banner!.text, /^554 5\.7\.1 Your address 127\.0\.0\.77 is on this server's blocklist \(entry 127\.0\.0\.77\)/);
  await c.waitClosed();

  const s = await r.session();
  const refused = await s.send('MAIL FROM:<x@mail.spam.test>', 554);
  assert.match(refused.text, /^554 5\.7\.1 Mail from mail\.spam\.test is refused by this server's blocklist \(entry spam\.test\)/);
  await s.send('MAIL FROM:<x@ham.test>', 250);
  s.close();

  writeFileSync(file, '');
  await waitFor(async () => {
    const again = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.77');
    const reply = await again.next();
    again.close();
    return reply?.code === 220;
  }, 5000, 'the emptied blocklist took effect');
});

test('envelope recipients are kept: a BCC recipient sees the message, with only its own address in the envelope', async () => {
  const id = await r.send({ to: 'visible@inbox.test', bcc: 'hidden@inbox.test', subject: 'bcc' });
  const [hidden] = await listed('hidden@inbox.test');
  assert.equal(hidden?.id, id);
  assert.deepEqual(hidden?.envelope.to, ['hidden@inbox.test']);
  const [visible] = await listed('visible@inbox.test');
  assert.deepEqual(visible?.envelope.to, ['visible@inbox.test']);
  const full = await r.json<{ inboxes: string[]; envelope: { to: string[] } }>(`/api/messages/${id}`);
  assert.deepEqual(full.body.inboxes.sort(), ['hidden@inbox.test', 'visible@inbox.test']);
});

test('one message for two inboxes is stored once and listed in both; deleting it from one leaves the other', async () => {
  const id = await r.send({ to: ['one@inbox.test', 'two@inbox.test'], subject: 'shared' });
  assert.equal((await listed('one@inbox.test'))[0]?.id, id);
  assert.equal((await listed('two@inbox.test'))[0]?.id, id);
  assert.equal((await r.json(`/api/inboxes/one@inbox.test/messages/${id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await listed('one@inbox.test')).length, 0);
  assert.equal((await listed('two@inbox.test'))[0]?.id, id);
  const fp = await r.inbox.footprint(id);
  assert.ok(fp.envelope && fp.raw > 0, 'the message stays while an inbox holds it');
});

test('with a key STARTTLS is offered; a message records that it came over TLS, and which protocol', async () => {
  const c = await SmtpTalk.connect(tlsReceiver.port);
  await c.expect(220);
  assert.match((await c.send('EHLO client.test', 250)).text, /STARTTLS/);
  await c.send('STARTTLS', 220);
  const secure = tls.connect({ socket: c.socket, rejectUnauthorized: false, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const s = SmtpTalk.wrap(secure);
  await s.send('EHLO client.test', 250);
  await s.send('MAIL FROM:<a@src.test>', 250);
  await s.send('RCPT TO:<secret@inbox.test>', 250);
  await s.send('DATA', 354);
  s.write(rawMessage({ Subject: 'over tls' }, 'hush') + '\r\n.\r\n');
  const id = /queued as (\S+)/.exec((await s.expect(250)).text)![1]!;
  s.close();
  const full = await tlsReceiver.json<{ client: { tls: boolean; tlsProtocol?: string } }>(`/api/messages/${id}`);
  assert.equal(full.body.client.tls, true);
  assert.match(full.body.client.tlsProtocol ?? '', /^TLSv1\.[23]$/);

  const plain = await r.send({ to: 'plain@inbox.test' });
  assert.equal((await r.json<{ client: { tls: boolean } }>(`/api/messages/${plain}`)).body.client.tls, false);
});
