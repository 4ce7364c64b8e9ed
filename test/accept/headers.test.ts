/**
 * The headers ingest adds: our Received (with the queue id; without the client's IP and name
 * when hideClientInfo is set), and Message-ID / Date when the message has none — a message that
 * has them keeps them as they were.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { queueKeyCount } from '../helpers/queue-census.js';

const MAX_HEADER_BYTES = 4096;

let m: TestMaster;
let privatePort: number;
before(async () => {
  m = await startMaster({
    api: { enabled: false },
    queue: { maxHeaderSize: MAX_HEADER_BYTES },
    smtp: { interfaces: { private: { port: 0, hideClientInfo: true } } },
  });
  privatePort = m.port('smtp.interfaces.private');
});
after(() => m.stop());

async function submit(port: number, message: string, rcpts = ['r@y.test'], helo = 'EHLO client-name.test'): Promise<{ id: string; headers: string }> {
  const c = await SmtpTalk.connect(port);
  try {
    await c.expect(220);
    c.write(Buffer.from(helo + '\r\n', 'latin1'));
    await c.expect(250);
    await c.send('MAIL FROM:<a@x.test>', 250);
    for (const r of rcpts) await c.send(`RCPT TO:<${r}>`, 250);
    await c.send('DATA', 354);
    c.write(message + '\r\n.\r\n');
    const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
    assert.ok(id);
    const meta = await m.master.store.getMeta(id);
    assert.ok(meta);
    return { id, headers: meta.headers };
  } finally {
    c.close();
  }
}

/** Every header field (unfolded) with that name, in order. */
function fields(block: string, name: string): string[] {
  const unfolded = block.replace(/\r\n([ \t])/g, '$1');
  return unfolded
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(name.toLowerCase() + ':'))
    .map((l) => l.slice(name.length + 1).trim());
}

test('Received comes first, names the queue id, the client name and IP, and the one recipient', async () => {
  const { id, headers } = await submit(m.smtpPort, 'Subject: trace\r\n\r\nbody');
  assert.match(headers, /^Received: /);
  const [received] = fields(headers, 'Received');
  assert.ok(received);
  assert.match(received, new RegExp(`\\bid ${id}\\b`));
  assert.match(received, /from client-name\.test \(\[127\.0\.0\.1\]\)/);
  assert.match(received, /by sluice\.test/);
  assert.match(received, /for <r@y\.test>/);
  assert.match(received, /; \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
});

test('a HELO name with ";", brackets or 8-bit bytes cannot garble the Received header', async () => {
  for (const helo of ['HELO evil;by.example.test(x)', 'EHLO h\xe9llo.test', 'HELO a\\b']) {
    const { id, headers } = await submit(m.smtpPort, 'Subject: helo\r\n\r\nbody', ['r@y.test'], helo);
    const [received] = fields(headers, 'Received');
    assert.ok(received);
    assert.equal(received.split(';').length, 2, `one ";" before the date: ${received}`);
    assert.match(received, /^from [A-Za-z0-9._:[\]-]+ \(\[127\.0\.0\.1\]\) by sluice\.test/);
    assert.match(received, new RegExp(`id ${id}`));
    assert.doesNotMatch(headers, /[^\x00-\x7f]/);
  }
});

test('hideClientInfo leaves the client IP and name out of Received, and keeps the id', async () => {
  const { id, headers } = await submit(privatePort, 'Subject: private\r\n\r\nbody', ['r1@y.test', 'r2@y.test']);
  const [received] = fields(headers, 'Received');
  assert.ok(received);
  assert.match(received, new RegExp(`\\bid ${id}\\b`));
  assert.doesNotMatch(received, /127\.0\.0\.1|client-name|\bfrom\b/);
  assert.doesNotMatch(headers, /127\.0\.0\.1|client-name/);
});

test('Message-ID and Date are added when missing', async () => {
  const { id, headers } = await submit(m.smtpPort, 'Subject: bare\r\n\r\nno ids here');
  const [messageId] = fields(headers, 'Message-ID');
  assert.match(messageId ?? '', /^<[^<>@\s]+@sluice\.test>$/);
  const [date] = fields(headers, 'Date');
  assert.ok(date && Math.abs(Date.parse(date) - Date.now()) < 60_000, date);
  const meta = await m.master.store.getMeta(id);
  assert.equal(meta?.messageId, messageId);
});

test('Message-ID and Date that are present are kept as they are, not doubled', async () => {
  const date = 'Tue, 03 Feb 2026 10:11:12 +0100';
  const { id, headers } = await submit(m.smtpPort, `Message-ID: <keep.me@x.test>\r\nDate: ${date}\r\nSubject: ids\r\n\r\nbody`);
  assert.deepEqual(fields(headers, 'Message-ID'), ['<keep.me@x.test>']);
  assert.deepEqual(fields(headers, 'Date'), [date]);
  const meta = await m.master.store.getMeta(id);
  assert.equal(meta?.messageId, '<keep.me@x.test>');
  // header names in other cases count as present too
  const lower = await submit(m.smtpPort, `message-id: <lower@x.test>\r\ndate: ${date}\r\n\r\nbody`);
  assert.equal(fields(lower.headers, 'Message-ID').length, 1);
  assert.equal(fields(lower.headers, 'Date').length, 1);
});

test('a message with no header block at all gets valid headers and keeps its body', async () => {
  const { id, headers } = await submit(m.smtpPort, '\r\njust a body');
  assert.equal(fields(headers, 'Message-ID').length, 1);
  assert.equal(fields(headers, 'Date').length, 1);
  assert.ok(headers.endsWith('\r\n\r\n'));
  const chunks: Buffer[] = [];
  for await (const c of m.master.store.readBody(id)) chunks.push(c);
  assert.equal(Buffer.concat(chunks).toString(), 'just a body\r\n');
});

test('a header block over queue.maxHeaderSize gets 552 5.3.4, nothing is stored, the session goes on', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  try {
    await c.expect(220);
    await c.send('EHLO client-name.test', 250);
    for (const ending of ['\r\n\r\nbody', '']) {
      const before = await queueKeyCount(m.master.store);
      await c.send('MAIL FROM:<a@x.test>', 250);
      await c.send('RCPT TO:<r@y.test>', 250);
      await c.send('DATA', 354);
      c.write('X-Filler: ' + 'f'.repeat(70) + ('\r\n X-More: ' + 'f'.repeat(70)).repeat(MAX_HEADER_BYTES / 70) + ending + '\r\n.\r\n');
      const r = await c.expect(552);
      assert.match(r.text, /^552 5\.3\.4 .*header/i);
      assert.equal(await queueKeyCount(m.master.store), before);
    }
    await c.send('MAIL FROM:<a@x.test>', 250);
  } finally {
    c.close();
  }
});
