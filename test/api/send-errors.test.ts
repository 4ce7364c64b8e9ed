/**
 * POST /send refusals: each bad request gets a 4xx with a JSON `{ error, message }` whose message
 * names the field, never a 500 or a stack, and nothing is queued. (Hostile bodies — broken JSON,
 * nesting bombs, oversize — are in test/fault/f15-hostile-json.test.ts.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, request, type ApiReply, type Json } from '../helpers/http.js';
import { queueKeyCount } from '../helpers/queue-census.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ api: { maxRecipients: 5 } });
});
after(() => m.stop());

const ok = { from: 'a@src.test', to: 'r@dest.test', subject: 's', text: 'x' };

function queueKeys(): Promise<number> {
  return queueKeyCount(m.master.store);
}

async function refused(body: unknown, status: number, message: RegExp, headers: Record<string, string> = {}): Promise<ApiReply> {
  const before = await queueKeys();
  const r = await postJson(`${m.api}/send`, body, headers);
  assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 200)} → ${r.status} ${JSON.stringify(r.body)}`);
  assert.ok(isErrorShape(r.body), JSON.stringify(r.body));
  assert.match(String(r.body.message), message);
  assert.equal(await queueKeys(), before, 'nothing queued');
  return r;
}

test('schema errors are 400 naming the field', async () => {
  await refused({ ...ok, to: 42 }, 400, /^body\.to: /);
  await refused({ ...ok, to: [{ name: 'no address' }] }, 400, /^body\.to/);
  await refused({ ...ok, subject: { nested: true } }, 400, /^body\.subject: must be string/);
  await refused({ ...ok, attachments: [{ filename: 'a', content: 7 }] }, 400, /^body\.attachments\.0\.content: must be string/);
  await refused({ ...ok, priority: 'urgent' }, 400, /^body\.priority: must be equal to one of the allowed values/);
  await refused({ ...ok, envelope: { to: 1 } }, 400, /^body\.envelope\.to/);
  await refused([ok], 400, /^body: must be object/);
  await refused('just a string', 400, /^body: must be object/);
});

test('unknown fields are refused by name, not dropped (ajv removeAdditional: false)', async () => {
  await refused({ ...ok, surprise: 1 }, 400, /unknown field "surprise"/);
  await refused({ ...ok, list: { unsubscribe: 'http://x.test/u' } }, 400, /unknown field "list"/);
  await refused({ ...ok, attachments: [{ content: 'x', streamSource: true }] }, 400, /body\.attachments\.0.*unknown field "streamSource"/);
  await refused({ ...ok, envelope: { from: 'a@src.test', to: 'r@dest.test', size: 10 } }, 400, /body\.envelope.*unknown field "size"/);
  await refused({ ...ok, from: { address: 'a@src.test', extra: 1 } }, 400, /body\.from/);
});

test('recipients: none → 400, more than api.maxRecipients → 400, duplicates count once', async () => {
  await refused({ from: 'a@src.test', subject: 's', text: 'x' }, 400, /^to: at least one recipient/);
  await refused({ from: 'a@src.test', to: [], subject: 's', text: 'x' }, 400, /^to: at least one recipient/);
  const six = Array.from({ length: 6 }, (_, i) => `r${i}@dest.test`);
  await refused({ ...ok, to: six.slice(0, 3), bcc: six.slice(3) }, 400, /^to: too many recipients \(more than 5\); at most 5/);
  const five = await postJson(`${m.api}/send`, { ...ok, to: [...six.slice(0, 5), 'r0@dest.test'] });
  assert.equal(five.status, 200, JSON.stringify(five.body));
  assert.equal((five.body.recipients as unknown[]).length, 5);
});

test('a sender is required and addresses must be valid', async () => {
  await refused({ to: 'r@dest.test', subject: 's', text: 'x' }, 400, /^from: a sender address is required/);
  await refused({ ...ok, to: 'not-an-address' }, 400, /^to: no address in "not-an-address"/);
  await refused({ ...ok, to: ['r@dest.test', 'garbage'] }, 400, /^to\[1\]: no address in "garbage"/);
  await refused({ ...ok, cc: 'r@dest.test, Name <>' }, 400, /^cc: no address/);
  await refused({ ...ok, to: { address: 'garbage' } }, 400, /^to: Invalid address/);
  await refused({ ...ok, from: 'nobody' }, 400, /^from: no address in "nobody"/);
  await refused({ ...ok, from: 'nobody@' }, 400, /^from: Invalid address/);
  await refused({ ...ok, to: 'r@-bad-.test' }, 400, /^to: Invalid address .*invalid domain/);
  await refused({ ...ok, envelope: { from: 'a@src.test', to: 'x@' } }, 400, /^to: Invalid address/);
});

test('wrong or missing Content-Type → 415; empty JSON body → 400', async () => {
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
    const r = await request(`${m.api}/send`, { method: 'POST', body: JSON.stringify(ok), headers: { 'content-type': type } });
    assert.equal(r.status, 415, type);
    assert.ok(isErrorShape(r.body));
    assert.equal(r.body.error, 'UnsupportedMediaType');
  }
  const empty = await request(`${m.api}/send`, { method: 'POST', body: '', headers: { 'content-type': 'application/json' } });
  assert.equal(empty.status, 400);
  assert.ok(isErrorShape(empty.body));
});

test('bad option values are 400, not 500: encodings, dates, iCalendar method, X-Originating-IP', async () => {
  await refused({ ...ok, encoding: 'nope' }, 400, /^body\.encoding/);
  await refused({ ...ok, text: { content: 'x', encoding: 'nope' } }, 400, /^body\.text/);
  await refused({ ...ok, attachments: [{ content: 'x', encoding: 'nope' }] }, 400, /^body\.attachments\.0\.encoding/);
  await refused({ ...ok, date: 'not a date' }, 400, /^date: not a date/);
  await refused({ ...ok, icalEvent: { method: 'REQUEST; x=y', content: 'BEGIN:VCALENDAR' } }, 400, /^icalEvent\.method/);
  await refused(ok, 400, /^X-Originating-IP/, { 'x-originating-ip': 'not-an-ip' });
});

test('custom headers: bad names, MIME structure headers and address headers are refused', async () => {
  await refused({ ...ok, headers: { 'X Space': 'v' } }, 400, /^headers\["X Space"\]: not a valid header name/);
  await refused({ ...ok, headers: { 'Content-Type': 'text/html' } }, 400, /^headers\["Content-Type"\]: MIME structure headers/);
  await refused({ ...ok, headers: [{ key: 'MIME-Version', value: '2.0' }] }, 400, /MIME structure headers/);
  await refused({ ...ok, headers: { Cc: 'extra@dest.test' } }, 400, /^headers\["Cc"\]: address headers/);
  await refused({ ...ok, attachments: [{ content: 'x', headers: { 'content-type': 'text/html' } }] }, 400, /^attachments\[0\]\.headers/);
  await refused({ ...ok, headers: { 'X-P': { prepared: true, value: 'a\r\nb: c' } } }, 400, /prepared header value/);
});

test('api:mail hook: a plain Error is 503 (temporary), a changed envelope is checked again', async () => {
  const seen = { n: 0 };
  m.master.hooks.add('api:mail', 'test-mutator', (envelope, message) => {
    seen.n++;
    if (message.subject === 'boom') throw new Error('plugin bug');
    if (message.subject === 'add-bad') envelope.to.push('not an address');
    if (message.subject === 'add-good') envelope.to.push('added@dest.test');
  });
  const boom = await postJson(`${m.api}/send`, { ...ok, subject: 'boom' });
  assert.equal(boom.status, 503);
  assert.ok(isErrorShape(boom.body));
  assert.doesNotMatch(String(boom.body.message), /plugin bug/, 'the plugin error is logged, not shown');
  await refused({ ...ok, subject: 'add-bad' }, 400, /^to: Invalid address/);
  const good = await postJson(`${m.api}/send`, { ...ok, subject: 'add-good' });
  assert.equal(good.status, 200);
  assert.deepEqual((good.body.recipients as Json[]).map((r) => r.recipient), ['r@dest.test', 'added@dest.test']);
  assert.ok(seen.n >= 3);
});

test('an unknown sending zone named in X-Sending-Zone is a client error', async () => {
  await refused({ ...ok, headers: { 'X-Sending-Zone': 'nosuchzone' } }, 400, /Unknown sending zone "nosuchzone"/);
});

test('envelope.from alone keeps the recipients from the header fields', async () => {
  const r = await postJson(`${m.api}/send`, { ...ok, envelope: { from: 'bounce@src.test' } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual((r.body.recipients as Json[]).map((x) => x.recipient), ['r@dest.test']);
  const meta = await m.master.store.getMeta(String(r.body.id));
  assert.equal(meta?.from, 'bounce@src.test');
});
