/**
 * F10, the SMTP side: (a) a declared SIZE over the limit is refused at MAIL,
 * before any data; (b) an undeclared 5 MiB body against a 1 MiB limit is read to its end and
 * refused with 552 5.3.4 after the final dot, the session takes its next message, the queue is
 * unchanged (no entry, no leftover chunk) and the master's memory does not follow the message.
 * (c), POST /send over the API limit, belongs to the API tests.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import type { QueueCensus } from '../../lib/queue/store.js';

const LIMIT_BYTES = 1024 * 1024;
const BODY_BYTES = 5 * 1024 * 1024;
const MAX_RSS_GROWTH_BYTES = 64 * 1024 * 1024;

let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { enabled: false }, smtp: { maxSize: LIMIT_BYTES } });
});
after(() => m.stop());

/** Keys per family: a refused message must leave no entry and no leftover chunk. */
function queueKeys(): Promise<QueueCensus> {
  return m.master.store.census();
}

async function greeted(): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  const ehlo = await c.send('EHLO client.test', 250);
  assert.match(ehlo.text, new RegExp(`SIZE ${LIMIT_BYTES}\\b`));
  return c;
}

test('F10a: MAIL FROM with SIZE=2000000 against a 1 MiB limit gets 552 5.3.4 at MAIL', async () => {
  const c = await greeted();
  const r = await c.send('MAIL FROM:<a@x.test> SIZE=2000000', 552);
  assert.match(r.text, /^552 5\.3\.4 /);
  // no transaction was opened
  await c.send('RCPT TO:<r@y.test>', 503);
  await c.send('DATA', 503);
  c.close();
});

test('F10b: an undeclared 5 MiB body gets 552 5.3.4 after the dot; the session goes on; nothing stored', async () => {
  const keysBefore = await queueKeys();
  const c = await greeted();
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<r@y.test>', 250);
  await c.send('DATA', 354);

  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
  let early = '';
  const onData = (d: Buffer) => (early += d.toString('latin1'));
  c.socket.on('data', onData);
  try {
    c.write('Subject: too big\r\n\r\n');
    const line = Buffer.from('z'.repeat(1000) + '\r\n');
    const chunk = Buffer.concat(Array.from({ length: 64 }, () => line));
    for (let sent = 0; sent < BODY_BYTES; sent += chunk.length) {
      if (!c.socket.write(chunk)) await once(c.socket, 'drain');
    }
    assert.equal(early, '', 'no reply before the final dot');
    c.write('.\r\n');
    const r = await c.expect(552, 30_000);
    assert.match(r.text, /^552 5\.3\.4 /);
  } finally {
    clearInterval(sampler);
    c.socket.off('data', onData);
  }
  const growth = rssPeak - rssBefore;
  assert.ok(growth < MAX_RSS_GROWTH_BYTES, `RSS grew by ${(growth / 1048576).toFixed(1)} MB`);

  assert.deepEqual(await queueKeys(), keysBefore, 'no entry and no leftover body chunk');

  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<r@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: fits\r\n\r\nsmall\r\n.\r\n');
  assert.match((await c.expect(250)).text, /queued as/);
  c.close();
});
