/**
 * Bad input gets a clear answer over SMTP, and nothing is stored for it: size (552), recipient
 * count (452 4.5.3), malformed addresses (501/553), DATA without RCPT (503), an untrusted client
 * without AUTH (530). A session stays usable after a refused message.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { queueKeyCount } from '../helpers/queue-census.js';

const MAX_SIZE = 64 * 1024;
const MAX_RCPTS = 5;

let m: TestMaster;
let untrusted: TestMaster;
before(async () => {
  [m, untrusted] = await Promise.all([
    startMaster({ smtp: { maxSize: MAX_SIZE, maxRecipients: MAX_RCPTS } }),
    startMaster({ smtp: { trustedNetworks: [] } }),
  ]);
});
after(() => Promise.all([m.stop(), untrusted.stop()]));

function countKeys(t: TestMaster): Promise<number> {
  return queueKeyCount(t.master.store);
}

async function session(port: number): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(port);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  return c;
}

test('a message over maxSize gets 552 after the dot, nothing is stored, and the session goes on', async () => {
  const before = await countKeys(m);
  const c = await session(m.smtpPort);
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<b@y.test>', 250);
  await c.send('DATA', 354);
  const line = 'x'.repeat(998) + '\r\n';
  c.write('Subject: big\r\n\r\n' + line.repeat(Math.ceil((MAX_SIZE * 2) / line.length)) + '.\r\n');
  const r = await c.expect(552);
  assert.match(r.text, /^552 5\.3\.4 /);
  assert.equal(await countKeys(m), before, 'no queue entry and no leftover chunks');

  // the same connection takes the next message
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<b@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: small\r\n\r\nfits\r\n.\r\n');
  assert.match((await c.expect(250)).text, /queued as [0-9a-f]+/);
  await c.send('QUIT', 221);
  c.close();
});

test('MAIL FROM with SIZE over the limit gets 552 at MAIL, before any data', async () => {
  const c = await session(m.smtpPort);
  const r = await c.send('MAIL FROM:<a@x.test> SIZE=2000000', 552);
  assert.match(r.text, /^552 5\.3\.4 /);
  await c.send(`MAIL FROM:<a@x.test> SIZE=${MAX_SIZE}`, 250);
  c.close();
});

test('the recipient over maxRecipients gets 452 4.5.3; the ones before it are kept', async () => {
  const c = await session(m.smtpPort);
  await c.send('MAIL FROM:<a@x.test>', 250);
  for (let i = 0; i < MAX_RCPTS; i++) await c.send(`RCPT TO:<r${i}@y.test>`, 250);
  const r = await c.send('RCPT TO:<over@y.test>', 452);
  assert.match(r.text, /^452 4\.5\.3 /);
  // a recipient given again is not one more (it replaces its earlier entry)
  await c.send('RCPT TO:<R0@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: five\r\n\r\nbody\r\n.\r\n');
  const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
  assert.ok(id);
  const rows = await m.master.store.getRows(id);
  assert.deepEqual(
    rows.map((row) => row.recipient),
    Array.from({ length: MAX_RCPTS }, (_, i) => (i === 0 ? 'R0@y.test' : `r${i}@y.test`)),
  );
  c.close();
});

const BAD_ADDRESSES: [command: string, why: string][] = [
  ['MAIL FROM:<a@@x.test>', 'two @'],
  ['MAIL FROM:<no-at-sign>', 'no domain'],
  ['MAIL FROM:<a@x..test>', 'empty label'],
  ['MAIL FROM:<a@-x.test>', 'label starts with a hyphen'],
  ['MAIL FROM:<a b@x.test>', 'space in the local part'],
  ['MAIL FROM:<.a@x.test>', 'leading dot'],
  ['MAIL FROM:<a..b@x.test>', 'double dot'],
  ['MAIL FROM:<a@x_y.test>', 'underscore in the domain'],
  ['MAIL FROM:<' + 'l'.repeat(65) + '@x.test>', 'local part over 64'],
  ['MAIL FROM:<a@' + 'd'.repeat(64) + '.test>', 'label over 63'],
  ['RCPT TO:<>', 'null recipient'],
  ['RCPT TO:<a@>', 'no domain'],
  ['RCPT TO:<@y.test>', 'no local part'],
  ['RCPT TO:<a(comment)@y.test>', 'comment'],
  ['RCPT TO:<a@[300.1.1.1]x>', 'broken literal'],
  ['RCPT TO:<a@y.test', 'no closing bracket'],
];

test('malformed addresses get 501 or 553 and leave the transaction as it was', async () => {
  const c = await session(m.smtpPort);
  for (const [command, why] of BAD_ADDRESSES) {
    if (command.startsWith('RCPT')) continue;
    const r = await ask(c, command);
    assert.ok([501, 553].includes(r.code), `${why}: ${r.text}`);
  }
  await c.send('MAIL FROM:<good@x.test>', 250);
  for (const [command, why] of BAD_ADDRESSES) {
    if (!command.startsWith('RCPT')) continue;
    const r = await ask(c, command);
    assert.ok([501, 553].includes(r.code), `${why}: ${r.text}`);
  }
  await c.send('RCPT TO:<good@y.test>', 250);
  c.close();
});

/** Sends one command and returns whatever reply comes. */
async function ask(c: SmtpTalk, command: string) {
  c.write(command + '\r\n');
  const r = await c.next();
  assert.ok(r, `connection closed after ${command}`);
  return r;
}

test('DATA without RCPT is 503, and so is RCPT without MAIL', async () => {
  const c = await session(m.smtpPort);
  await c.send('RCPT TO:<b@y.test>', 503);
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('DATA', 503);
  c.close();
});

test('a client outside trustedNetworks without AUTH gets 530 at MAIL and stores nothing', async () => {
  const before = await countKeys(untrusted);
  const c = await session(untrusted.smtpPort);
  const r = await c.send('MAIL FROM:<a@x.test>', 530);
  assert.match(r.text, /^530 5\.7\.0 /);
  await c.send('RCPT TO:<b@y.test>', 503);
  await c.send('DATA', 503);
  assert.equal(await countKeys(untrusted), before);
  c.close();
});
