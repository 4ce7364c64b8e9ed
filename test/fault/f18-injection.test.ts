/**
 * F18: header and envelope injection through POST /send. Every CR/LF payload either gets a 400
 * naming the field, or is accepted and then, in the stored message (header block + body chunks,
 * walked part by part with mailsplit): no Bcc header, no header line we did not expect, at most
 * one Content-Type per part — and the delivery rows hold only the intended recipients (0 ×
 * evil.test). Rows are what the delivery side will send RCPT for.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, type Json, type SendReply } from '../helpers/http.js';
import { keysOf, mimeParts, storedBytes } from '../helpers/stored-message.js';

let m: TestMaster;
before(async () => {
  m = await startMaster();
});
after(() => m.stop());

const base = { from: 'a@x.test', to: 'ok@dest.test', subject: 'hello', text: 'body' };

/** Headers a composed message may carry at its root; anything else is an injected line. */
const ROOT_HEADERS = new Set(['received', 'from', 'to', 'cc', 'subject', 'message-id', 'date', 'mime-version', 'content-type', 'content-transfer-encoding']);
const PART_HEADERS = new Set(['content-type', 'content-transfer-encoding', 'content-disposition', 'content-id']);

const refusedCases: [string, Json, RegExp][] = [
  ['from with CRLF', { from: 'a@x.test\r\nBcc: v2@evil.test' }, /^from: line breaks/],
  ['from as a group', { from: 'grp: v2c@evil.test;' }, /^from: a group/],
  ['envelope.from as a group', { envelope: { from: 'g: v2d@evil.test;' } }, /^envelope\.from: a group/],
  ['from name with CRLF', { from: { name: 'Eve\r\nBcc: v2b@evil.test', address: 'a@x.test' } }, /^from\.name: line breaks/],
  ['to with LF', { to: 'ok@dest.test\nbcc: v6@evil.test' }, /^to: line breaks/],
  ['to list item with CR', { to: ['ok@dest.test', 'x@dest.test\rBcc: v6b@evil.test'] }, /^to\[1\]: line breaks/],
  ['replyTo with CRLF', { replyTo: 'r@x.test\r\nBcc: v6c@evil.test' }, /^replyTo: line breaks/],
  ['envelope.from with CRLF', { envelope: { from: 'a@x\r\nRCPT TO:<v7@evil.test>', to: 'ok@dest.test' } }, /^envelope\.from: line breaks/],
  ['envelope.to with CRLF', { envelope: { to: 'ok@dest.test\r\nRCPT TO:<v7b@evil.test>' } }, /^envelope\.to: line breaks/],
  ['messageId with CRLF', { messageId: '<x>\r\nBcc: v8' }, /^messageId: line breaks/],
  ['inReplyTo with CRLF', { inReplyTo: '<x@y>\r\nBcc: v8b@evil.test' }, /^inReplyTo: line breaks/],
  ['references with CRLF', { references: ['<a@b>', '<c@d>\r\nBcc: v8c@evil.test'] }, /^references\[1\]: line breaks/],
  ['date with CRLF', { date: 'Mon, 23 Nov 2026 10:00:00 +0000\r\nBcc: v8d@evil.test' }, /^date: line breaks/],
  ['header names with CRLF and space', { headers: { 'X-A': 'v\r\nBcc: v3@evil.test', 'X-B\r\nBcc': 'v4@evil.test', 'Bcc ': 'v5' } }, /^headers\["X-B\\r\\nBcc"\]: not a valid header name/],
  ['header name "Bcc " with a space', { headers: { 'Bcc ': 'v5@evil.test' } }, /^headers\["Bcc "\]: not a valid header name/],
  ['Bcc as a custom header', { headers: { Bcc: 'v5b@evil.test' } }, /^headers\["Bcc"\]: address headers/],
  ['To as a custom header with LF', { headers: [{ key: 'to', value: 'ok@dest.test\nbcc: v6d@evil.test' }] }, /^headers\["to"\]: address headers/],
  ['prepared header value with CRLF', { headers: { 'X-P': { prepared: true, value: 'v\r\nBcc: v3b@evil.test' } } }, /^headers\["X-P"\]: a prepared header value/],
  ['attachment prepared header', { attachments: [{ content: 'x', headers: { 'X-Q': { prepared: true, value: 'v\r\nContent-Type: text/html' } } }] }, /^attachments\[0\]\.headers\["X-Q"\]: a prepared/],
  ['attachment Content-Type header', { attachments: [{ content: 'x', headers: { 'Content-Type': 'text/html' } }] }, /MIME structure headers/],
  ['attachment contentType with CRLF', { attachments: [{ content: 'x', contentType: 'text/plain\r\nBcc: v10@evil.test' }] }, /^attachments\[0\]\.contentType: line breaks/],
  ['attachment cid with CRLF', { attachments: [{ content: 'x', cid: 'c\r\nBcc: v11@evil.test' }] }, /^attachments\[0\]\.cid: line breaks/],
  ['icalEvent method with CRLF', { icalEvent: { content: 'BEGIN:VCALENDAR', method: 'REQUEST\r\nBcc: v12@evil.test' } }, /^icalEvent\.method: line breaks/],
];

test('CR/LF where it would reach an address, an id or a MIME parameter → 400 naming the field', async () => {
  for (const [label, extra, field] of refusedCases) {
    const r = await postJson(`${m.api}/send`, { ...base, ...extra });
    assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
    assert.ok(isErrorShape(r.body), label);
    assert.match(String(r.body.message), field, label);
  }
  assert.equal(m.master.store.counters.totals().queued, 0, 'nothing queued');
});

const acceptedCases: [string, Json, string[]][] = [
  ['subject with CRLF Bcc', { subject: 'a\r\nBcc: v1@evil.test' }, []],
  ['subject with a blank line (header/body split)', { subject: 'a\r\n\r\n<b>fake body</b>\r\nBcc: v1b@evil.test' }, []],
  ['header value with CRLF Bcc', { headers: { 'X-A': 'v\r\nBcc: v3@evil.test' } }, ['x-a']],
  ['header value list with CRLF', { headers: { 'X-L': ['one\r\nBcc: v3c@evil.test', 'two\n\nthree'] } }, ['x-l']],
  ['attachment filename with CRLF Content-Type', { attachments: [{ filename: 'a\r\nContent-Type: text/html', content: 'x' }] }, []],
  ['attachment header value with CRLF', { attachments: [{ filename: 'b.txt', content: 'x', headers: { 'X-Att': 'v\r\nContent-Type: text/html' } }] }, []],
  ['text with a fake header block', { text: 'line\r\n\r\nBcc: v9@evil.test\r\nContent-Type: text/html\r\n\r\n<b>x</b>' }, []],
];

async function assertClean(reply: SendReply, label: string, extraRootHeaders: string[]): Promise<void> {
  const rows = await m.master.store.getRows(reply.id);
  assert.deepEqual(rows.map((r) => r.recipient), ['ok@dest.test'], `${label}: rows`);
  assert.deepEqual(reply.recipients.map((r) => r.recipient), ['ok@dest.test'], `${label}: reply`);

  const parts = await mimeParts(await storedBytes(m.master.store, reply.id));
  assert.ok(parts.length >= 1, label);
  const allowedRoot = new Set([...ROOT_HEADERS, ...extraRootHeaders]);
  for (const [i, part] of parts.entries()) {
    const keys = keysOf(part);
    assert.ok(!keys.includes('bcc'), `${label}: part ${i} has a Bcc header`);
    assert.ok(keys.filter((k) => k === 'content-type').length <= 1, `${label}: part ${i} has ${keys.join(',')}`);
    const allowed = part.root ? allowedRoot : new Set([...PART_HEADERS, 'x-att']);
    for (const key of keys) assert.ok(allowed.has(key), `${label}: part ${i} has an unexpected header "${key}"`);
    for (const line of part.lines) {
      // folded continuation lines start with white space; no line may start a new field
      for (const physical of line.line.split(/\r?\n/).slice(1)) assert.match(physical, /^[ \t]/, `${label}: ${JSON.stringify(line.line)}`);
    }
  }
}

test('accepted CR/LF payloads are folded or encoded: no Bcc, no extra lines, one Content-Type per part, only the intended RCPT', async () => {
  for (const [label, extra, extraRoot] of acceptedCases) {
    const r = await postJson(`${m.api}/send`, { ...base, ...extra });
    assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body)}`);
    await assertClean(r.body as unknown as SendReply, label, extraRoot);
  }
});

test('no delivery row anywhere in the queue points at evil.test', async () => {
  for await (const { id, seq } of m.master.store.allRowKeys()) {
    const rows = await m.master.store.getRows(id);
    const row = rows.find((r) => r.seq === seq);
    assert.ok(row && !row.domain.endsWith('evil.test'), `${id}/${seq}: ${row?.recipient}`);
  }
});
