/**
 * POST /send-raw (a whole RFC 822 message, ZoneMTA's route) and the ZoneMTA reply shape of
 * POST /send and /send-raw, over a real HTTP socket into the real queue: the envelope from the
 * headers (Bcc a recipient, never stored), the query's envelope instead, bytes kept as sent with
 * line ends made CRLF, a large message streamed through, and every refusal with its status.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, request, type Json, type SendReply } from '../helpers/http.js';
import { storedBytes } from '../helpers/stored-message.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ smtp: { maxSize: '4MB' }, zones: { bulk: { recipientDomains: ['bulk.test'] } } });
});
after(() => m.stop());

function sendRaw(message: string | Buffer, query = '', headers: Record<string, string> = {}) {
  return request(`${m.api}/send-raw${query}`, { method: 'POST', body: message, headers: { 'content-type': 'message/rfc822', ...headers } });
}

const MESSAGE = [
  'From: "Sender, Esq." <sender@src.test>',
  'To: one@dest.test, Two <two@bulk.test>',
  'Cc: three@dest.test',
  'Bcc: hidden@dest.test,',
  ' other-hidden@dest.test',
  'Subject: raw hello',
  '',
  'line one',
  'line two',
  '',
].join('\n');

test('the envelope comes from From, To, Cc and Bcc; Bcc is a recipient but not stored; LF line ends are stored as CRLF', async () => {
  const r = await sendRaw(MESSAGE);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const reply = r.body as unknown as SendReply;
  assert.deepEqual(Object.keys(reply).sort(), ['id', 'messageId', 'recipients']);
  assert.deepEqual(
    reply.recipients.map((x) => [x.recipient, x.zone]),
    [
      ['one@dest.test', 'default'],
      ['two@bulk.test', 'bulk'],
      ['three@dest.test', 'default'],
      ['hidden@dest.test', 'default'],
      ['other-hidden@dest.test', 'default'],
    ],
  );
  const meta = (await request(`${m.api}/message/${reply.id}`)).body.meta as Json;
  assert.equal(meta.from, 'sender@src.test');
  const stored = (await storedBytes(m.master.store, reply.id)).toString('latin1');
  assert.doesNotMatch(stored, /^bcc:/im, 'no Bcc header');
  assert.doesNotMatch(stored, /hidden@dest\.test/, 'the Bcc addresses are nowhere in the message');
  assert.match(stored, /^Subject: raw hello\r\n/m);
  assert.ok(stored.endsWith('\r\n\r\nline one\r\nline two\r\n'), JSON.stringify(stored.slice(-40)));
});

test('?from= and ?to= give the envelope instead of the headers', async () => {
  const r = await sendRaw(MESSAGE, '?from=bounces@src.test&to=' + encodeURIComponent('only@dest.test, also@bulk.test'));
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual((r.body as unknown as SendReply).recipients.map((x) => x.recipient), ['only@dest.test', 'also@bulk.test']);
  const meta = (await request(`${m.api}/message/${String(r.body.id)}`)).body.meta as Json;
  assert.equal(meta.from, 'bounces@src.test');
});

test('a 3 MB message streams through byte for byte (CRLF), and one over smtp.maxSize is a 413 with nothing queued', async () => {
  const line = 'x'.repeat(76) + '\r\n';
  const body = line.repeat(Math.ceil((3 * 1024 * 1024) / line.length));
  const r = await sendRaw(`From: a@src.test\r\nTo: b@dest.test\r\nSubject: big\r\n\r\n${body}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const stored = await storedBytes(m.master.store, String(r.body.id));
  const storedBody = stored.subarray(stored.indexOf('\r\n\r\n') + 4);
  assert.equal(createHash('sha256').update(storedBody).digest('hex'), createHash('sha256').update(body).digest('hex'));

  const before = (await request(`${m.api}/queue/default`)).body.queued;
  const big = await sendRaw(`From: a@src.test\r\nTo: b@dest.test\r\nSubject: too big\r\n\r\n${line.repeat(Math.ceil((5 * 1024 * 1024) / line.length))}`);
  assert.equal(big.status, 413, JSON.stringify(big.body));
  assert.ok(isErrorShape(big.body));
  assert.equal((await request(`${m.api}/queue/default`)).body.queued, before, 'nothing queued');
});

test('refusals: no sender, no recipient, a bad address, another content type', async () => {
  const noFrom = await sendRaw('To: b@dest.test\r\nSubject: x\r\n\r\nhi\r\n');
  assert.equal(noFrom.status, 400);
  assert.match(String(noFrom.body.message), /^from: /);
  const noTo = await sendRaw('From: a@src.test\r\nSubject: x\r\n\r\nhi\r\n');
  assert.equal(noTo.status, 400);
  assert.match(String(noTo.body.message), /^to: at least one recipient/);
  const bad = await sendRaw(MESSAGE, '?to=' + encodeURIComponent('not an address'));
  assert.equal(bad.status, 400);
  assert.match(String(bad.body.message), /^to: /);
  // a refused upload is read to its end: the client gets the 400, not a reset
  const bigNoFrom = await sendRaw('To: b@dest.test\r\nSubject: x\r\n\r\n' + ('y'.repeat(76) + '\r\n').repeat(30_000));
  assert.equal(bigNoFrom.status, 400);
  assert.match(String(bigNoFrom.body.message), /^from: /);
  const text = await request(`${m.api}/send-raw`, { method: 'POST', body: MESSAGE, headers: { 'content-type': 'text/plain' } });
  assert.equal(text.status, 415, JSON.stringify(text.body));
  assert.ok(isErrorShape(text.body));
});

test("ZoneMTA's reply shape on /send and /send-raw when X-Reply-Shape asks for it; an unknown shape is a 400", async () => {
  const raw = await sendRaw(MESSAGE, '', { 'x-reply-shape': 'zonemta' });
  assert.equal(raw.status, 200, JSON.stringify(raw.body));
  assert.deepEqual(Object.keys(raw.body).sort(), ['from', 'id', 'response', 'to']);
  assert.equal(raw.body.from, 'sender@src.test');
  assert.deepEqual(raw.body.to, ['one@dest.test', 'two@bulk.test', 'three@dest.test', 'hidden@dest.test', 'other-hidden@dest.test']);
  assert.equal(raw.body.response, `Message queued as ${String(raw.body.id)}`);

  const json = await postJson(`${m.api}/send`, { from: 'a@src.test', to: 'b@dest.test', subject: 's', text: 't' }, { 'x-reply-shape': 'ZoneMTA' });
  assert.equal(json.status, 200, JSON.stringify(json.body));
  assert.deepEqual(json.body, { id: json.body.id, from: 'a@src.test', to: ['b@dest.test'], response: `Message queued as ${String(json.body.id)}` });

  const unknown = await postJson(`${m.api}/send`, { from: 'a@src.test', to: 'b@dest.test', text: 't' }, { 'x-reply-shape': 'postfix' });
  assert.equal(unknown.status, 400);
  assert.match(String(unknown.body.message), /^X-Reply-Shape: expected one of sluice, zonemta/);
});

test('api.replyShape = "zonemta" makes it the default; X-Reply-Shape: sluice still asks for ours', async () => {
  const z = await startMaster({ api: { replyShape: 'zonemta' } });
  try {
    const r = await postJson(`${z.api}/send`, { from: 'a@src.test', to: 'b@dest.test', text: 't' });
    assert.equal(r.body.response, `Message queued as ${String(r.body.id)}`);
    const ours = await postJson(`${z.api}/send`, { from: 'a@src.test', to: 'b@dest.test', text: 't' }, { 'x-reply-shape': 'sluice' });
    assert.deepEqual(Object.keys(ours.body).sort(), ['id', 'messageId', 'recipients']);
  } finally {
    await z.stop();
  }
});
