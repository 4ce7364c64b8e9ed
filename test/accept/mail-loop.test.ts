/**
 * Mail loops: a message that arrives with more Received headers than queue.maxReceivedHeaders
 * (Postfix's hopcount_limit, 50 by default) has been around a loop; it is refused with
 * 554 5.4.6 through SMTP and 400 through POST /send, and nothing is queued. At the limit it is
 * accepted, and its own Received header goes on top.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { postJson } from '../helpers/http.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

let m: TestMaster;
before(async () => {
  m = await startMaster();
});
after(() => m.stop());

const hops = (n: number) =>
  Array.from({ length: n }, (_, i) => `Received: from hop${i}.test by hop${i + 1}.test with ESMTP id h${i};\r\n\tMon, 23 Nov 2026 05:27:31 +0000\r\n`).join('');

async function submit(port: number, message: string) {
  const c = await SmtpTalk.connect(port);
  try {
    await c.openData();
    c.write(`${message}\r\n.\r\n`);
    const reply = await c.next();
    assert.ok(reply, 'a reply to the data');
    // the session stays usable after the refusal
    await c.send('RSET', 250);
    return reply;
  } finally {
    c.close();
  }
}

test('51 Received headers: 554 5.4.6 after the data, and nothing is queued', async () => {
  const before = m.master.store.counters.totals().queued;
  const reply = await submit(m.smtpPort, `${hops(51)}Subject: looping\r\n\r\nbody`);
  assert.match(reply.text, /^554 5\.4\.6 /);
  assert.match(reply.text, /51 Received headers/);
  assert.equal(m.master.store.counters.totals().queued, before);
});

test('50 Received headers (the default limit) are accepted, with ours on top', async () => {
  const reply = await submit(m.smtpPort, `${hops(50)}Subject: long way\r\n\r\nbody`);
  const id = /queued as ([0-9a-f]+)/.exec(reply.text)?.[1];
  assert.ok(id, reply.text);
  const meta = await m.master.store.getMeta(id);
  assert.equal(meta?.headers.match(/^Received:/gim)?.length, 51);
  assert.match(meta?.headers ?? '', new RegExp(`^Received: [^;]*id ${id}`));
});

test('POST /send with a raw message past the limit → 400 naming the loop', async () => {
  const r = await postJson(`${m.api}/send`, { from: 'a@x.test', to: 'r@y.test', raw: `${hops(60)}Subject: raw loop\r\n\r\nbody\r\n` });
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.equal(r.body.error, 'Rejected');
  assert.match(String(r.body.message), /^554 5\.4\.6 /);
});

test('queue.maxReceivedHeaders sets the limit', async () => {
  const strict = await startMaster({ queue: { maxReceivedHeaders: 3 } });
  try {
    assert.match((await submit(strict.smtpPort, `${hops(4)}Subject: x\r\n\r\nbody`)).text, /^554 5\.4\.6 /);
    assert.match((await submit(strict.smtpPort, `${hops(3)}Subject: x\r\n\r\nbody`)).text, /^250 /);
  } finally {
    await strict.stop();
  }
});
