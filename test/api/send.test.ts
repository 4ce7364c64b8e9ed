/**
 * POST /send happy paths with nodemailer's message JSON: the reply shape, the envelope (bcc is a
 * recipient but never a stored header, `envelope` overrides the header addresses), UTF-8,
 * attachments from base64, `raw`, custom headers, the origin headers — read back through
 * GET /message/:id and the stored bytes, which went through the same ingest() as SMTP.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import libmime from 'libmime';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { postJson, request, type Json, type SendReply } from '../helpers/http.js';
import { mimeParts, storedBytes, keysOf } from '../helpers/stored-message.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ zones: { bulk: { recipientDomains: ['bulk.test'] } } });
});
after(() => m.stop());

async function send(message: Json, headers: Record<string, string> = {}): Promise<SendReply> {
  const r = await postJson(`${m.api}/send`, message, headers);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as SendReply;
}

async function storedHeaders(id: string): Promise<string> {
  const meta = await m.master.store.getMeta(id);
  assert.ok(meta, `meta of ${id}`);
  return meta.headers;
}

test('from/to/cc/bcc: every address is a recipient, Bcc is not a stored header, reply is { id, messageId, recipients }', async () => {
  const reply = await send({
    from: { name: 'Ärger Ödön', address: 'sender@src.test' },
    to: ['one@dest.test', { name: 'Two', address: 'two@bulk.test' }],
    cc: 'three@dest.test',
    bcc: ['hidden@dest.test'],
    subject: 'Grüße 🚀 — ünïcödé',
    text: 'plain ✓',
    html: '<p>html ✓</p>',
  });
  assert.deepEqual(Object.keys(reply).sort(), ['id', 'messageId', 'recipients']);
  assert.match(reply.id, /^[0-9a-f]{22}$/);
  assert.match(reply.messageId, /^<[^<>\s]+@[^<>\s]+>$/);
  assert.deepEqual(
    reply.recipients.map((r) => [r.seq, r.recipient, r.zone]),
    [
      [1, 'one@dest.test', 'default'],
      [2, 'two@bulk.test', 'bulk'],
      [3, 'three@dest.test', 'default'],
      [4, 'hidden@dest.test', 'default'],
    ],
  );

  const headers = await storedHeaders(reply.id);
  assert.doesNotMatch(headers, /^bcc:/im, 'no Bcc header');
  assert.doesNotMatch(headers, /hidden@dest\.test/, 'the bcc address is nowhere in the headers');
  assert.match(headers, /^Message-ID: (.+)$/m);
  assert.equal(/^Message-ID: (.+)$/im.exec(headers)?.[1]?.trim(), reply.messageId);
  assert.match(headers.replace(/\r\n[ \t]+/g, ' '), /^Received: .*with HTTP id [0-9a-f]{22}/m);

  const res = await request(`${m.api}/message/${reply.id}`);
  assert.equal(res.status, 200);
  const meta = res.body.meta as Json;
  assert.equal(meta.from, 'sender@src.test');
  assert.equal(meta.subject, 'Grüße 🚀 — ünïcödé', 'UTF-8 subject survives encoding and decoding');
  assert.equal(meta.messageId, reply.messageId);
  assert.equal(meta.rcptCount, 4);
  const rows = res.body.messages as Json[];
  assert.deepEqual(
    rows.map((r) => r.recipient),
    ['one@dest.test', 'two@bulk.test', 'three@dest.test', 'hidden@dest.test'],
  );

  // text + html → multipart/alternative with both bodies
  const parts = await mimeParts(await storedBytes(m.master.store, reply.id));
  assert.equal(parts[0]!.contentType, 'multipart/alternative');
  assert.deepEqual(parts.slice(1).map((p) => p.contentType), ['text/plain', 'text/html']);
  const from = /^From: (.+)$/m.exec(headers)?.[1] ?? '';
  assert.equal(libmime.decodeWords(from), 'Ärger Ödön <sender@src.test>');
});

test('X-Authenticated-User and X-Originating-IP are recorded in meta.origin', async () => {
  const reply = await send(
    { from: 'a@src.test', to: 'r@dest.test', subject: 'origin', text: 'x' },
    { 'x-authenticated-user': 'alice', 'x-originating-ip': '192.0.2.7' },
  );
  const res = await request(`${m.api}/message/${reply.id}`);
  const origin = (res.body.meta as Json).origin as Json;
  assert.equal(origin.via, 'api');
  assert.equal(origin.user, 'alice');
  assert.equal(origin.originatingIp, '192.0.2.7');
  assert.equal(origin.remoteAddress, '127.0.0.1');
  // the stored header block is never shown by the API
  assert.equal((res.body.meta as Json).headers, undefined);
});

test('attachments with base64 content are stored as MIME parts with their bytes', async () => {
  const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 13, 10, 0x2e]);
  const reply = await send({
    from: 'a@src.test',
    to: 'r@dest.test',
    subject: 'attachment',
    text: 'see attached',
    attachments: [
      { filename: 'data.bin', content: bytes.toString('base64'), encoding: 'base64' },
      { filename: 'notes.txt', content: 'plain attachment text' },
    ],
  });
  const parts = await mimeParts(await storedBytes(m.master.store, reply.id));
  assert.equal(parts[0]!.contentType, 'multipart/mixed');
  const bin = parts.find((p) => p.lines.some((l) => /filename=.*data\.bin/.test(l.line)));
  assert.ok(bin, 'the binary attachment is a part');
  assert.equal(bin.contentType, 'application/octet-stream');
  assert.deepEqual(Buffer.from(bin.body.replace(/\s+/g, ''), 'base64'), bytes);
  assert.ok(parts.some((p) => p.lines.some((l) => /notes\.txt/.test(l.line))));
});

test('raw as a string is stored as given; the envelope comes from the from/to fields', async () => {
  const raw = 'From: Raw <raw@src.test>\r\nTo: shown@dest.test\r\nSubject: raw message\r\n\r\nraw body line\r\n';
  const reply = await send({ from: 'env@src.test', to: ['real@dest.test'], raw });
  assert.deepEqual(reply.recipients.map((r) => r.recipient), ['real@dest.test']);
  const meta = await m.master.store.getMeta(reply.id);
  assert.equal(meta?.from, 'env@src.test');
  assert.equal(meta?.subject, 'raw message');
  const stored = (await storedBytes(m.master.store, reply.id)).toString('latin1');
  assert.match(stored, /\r\nFrom: Raw <raw@src\.test>\r\nTo: shown@dest\.test\r\nSubject: raw message\r\n/);
  assert.match(stored, /\r\n\r\nraw body line\r\n$/);
  // ingest added what a message must have
  assert.match(stored, /^Message-ID: /m);
  assert.match(stored, /^Date: /m);
});

test('custom headers (object and list form) land in the stored header block', async () => {
  const a = await send({ from: 'a@src.test', to: 'r@dest.test', text: 'x', headers: { 'X-Campaign': 'spring', 'X-Multi': ['one', 'two'] } });
  const h = await storedHeaders(a.id);
  assert.match(h, /^X-Campaign: spring\r$/m);
  assert.match(h, /^X-Multi: one\r\nX-Multi: two\r$/m);
  const b = await send({ from: 'a@src.test', to: 'r@dest.test', text: 'x', headers: [{ key: 'X-Listed', value: 'yes' }] });
  assert.match(await storedHeaders(b.id), /^X-Listed: yes\r$/m);
});

test('envelope overrides the header addresses: envelope.to are the recipients, envelope.from the sender', async () => {
  const reply = await send({
    from: 'header-from@src.test',
    to: 'header-to@dest.test',
    cc: 'header-cc@dest.test',
    subject: 'envelope',
    text: 'x',
    envelope: { from: 'bounces@src.test', to: ['env1@dest.test', 'env2@bulk.test'] },
  });
  assert.deepEqual(reply.recipients.map((r) => [r.recipient, r.zone]), [
    ['env1@dest.test', 'default'],
    ['env2@bulk.test', 'bulk'],
  ]);
  const meta = await m.master.store.getMeta(reply.id);
  assert.equal(meta?.from, 'bounces@src.test');
  const h = await storedHeaders(reply.id);
  assert.match(h, /^From: header-from@src\.test\r$/m);
  assert.match(h, /^To: header-to@dest\.test\r$/m);
  assert.match(h, /^Cc: header-cc@dest\.test\r$/m);
});

test('priority, threading headers and an ISO date become proper headers', async () => {
  const reply = await send({
    from: 'a@src.test',
    to: 'r@dest.test',
    text: 'x',
    priority: 'high',
    inReplyTo: '<p@src.test>',
    references: ['<o@src.test>', '<p@src.test>'],
    date: '2020-02-03T04:05:06Z',
  });
  const h = await storedHeaders(reply.id);
  assert.match(h, /^Date: Mon, 03 Feb 2020 04:05:06 \+0000\r$/m);
  assert.match(h, /^X-Priority: 1 \(Highest\)\r$/m);
  assert.match(h, /^Importance: High\r$/m);
  assert.match(h, /^In-Reply-To: <p@src\.test>\r$/m);
  assert.match(h, /^References: <o@src\.test> <p@src\.test>\r$/m);
});

test('an api:mail hook sees the envelope and the message, and its rejection reaches the client', async () => {
  const seen: { from: string; to: string[]; user?: string }[] = [];
  m.master.hooks.add('api:mail', 'test-guard', (envelope, message) => {
    seen.push({ from: envelope.from, to: envelope.to, user: envelope.origin.user });
    if (message.subject === 'forbidden') throw Object.assign(new Error('Sender not allowed'), { responseCode: 550 });
  });
  await send({ from: 'h@src.test', to: 'r@dest.test', subject: 'ok', text: 'x' }, { 'x-authenticated-user': 'bob' });
  assert.deepEqual(seen.at(-1), { from: 'h@src.test', to: ['r@dest.test'], user: 'bob' });
  const denied = await postJson(`${m.api}/send`, { from: 'h@src.test', to: 'r@dest.test', subject: 'forbidden', text: 'x' });
  assert.equal(denied.status, 400);
  assert.match(String(denied.body.message), /550 .*Sender not allowed/);
});

test('the body goes through ingest: headers are CRLF, bare LF in text is normalised', async () => {
  const reply = await send({ from: 'a@src.test', to: 'r@dest.test', subject: 'lf', text: 'line1\nline2\rline3\r\n' });
  const stored = await storedBytes(m.master.store, reply.id);
  const s = stored.toString('latin1');
  assert.equal(/[^\r]\n/.test(s), false, 'no bare LF');
  assert.equal(/\r[^\n]/.test(s), false, 'no bare CR');
  const parts = await mimeParts(stored);
  assert.ok(keysOf(parts[0]!).includes('received'));
});
