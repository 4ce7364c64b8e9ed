/**
 * The inbox API (lib/inbound/api/routes.ts) over HTTP: listing newest first with cursor pages
 * that neither skip nor repeat while mail arrives, latest, one message, raw bytes exactly as
 * received, text, HTML as sent and sanitised (with the CSP), headers in order with duplicates,
 * attachments as stored, deletions, unknown inboxes, another inbox's message, bad addresses, the
 * per-IP rate limit and the token rules (Mailsac-Key included).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rawMessage, startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 } });
});
after(() => r.stop());

interface Listed {
  id: string;
  subject: string;
}
interface Page {
  inbox: string;
  messages: Listed[];
  nextCursor: string | null;
}

/** Sends raw bytes as DATA (dot-stuffed), so the test knows exactly what was sent. */
async function sendRaw(to: string, raw: string): Promise<string> {
  const c = await r.session();
  await c.send('MAIL FROM:<raw@src.test>', 250);
  await c.send(`RCPT TO:<${to}>`, 250);
  await c.send('DATA', 354);
  c.write(raw.replace(/^\./gm, '..') + (raw.endsWith('\r\n') ? '' : '\r\n') + '.\r\n');
  const id = /queued as (\S+)/.exec((await c.expect(250)).text)![1]!;
  await c.send('QUIT', 221);
  c.close();
  return id;
}

test('an inbox nobody wrote to is an empty list; an address that is not one is 400', async () => {
  const empty = await r.json<Page>('/api/inboxes/nobody@inbox.test/messages');
  assert.equal(empty.status, 200);
  assert.deepEqual(empty.body, { inbox: 'nobody@inbox.test', messages: [], nextCursor: null });
  const other = await r.json<Page>('/api/inboxes/someone@not-ours.test/messages');
  assert.deepEqual(other.body.messages, []);
  for (const bad of ['not-an-address', '%2e%2e%2f%2e%2e%2fetc%2fpasswd', `${'a'.repeat(300)}@inbox.test`]) {
    const res = await r.json<{ error: string }>(`/api/inboxes/${bad}/messages`);
    assert.equal(res.status, 400, bad);
    assert.equal(res.body.error, 'BadRequest');
  }
  assert.equal((await r.json('/api/inboxes/nobody@inbox.test/messages/latest')).status, 404);
});

test('a listing is newest first, addresses without case; cursor pages neither skip nor repeat while mail arrives', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await r.send({ to: 'Pager@Inbox.test', subject: `p${i}` }));
  const first = await r.json<Page>('/api/inboxes/PAGER@inbox.TEST/messages?limit=2');
  assert.equal(first.body.inbox, 'pager@inbox.test');
  assert.deepEqual(first.body.messages.map((m) => m.subject), ['p4', 'p3']);
  assert.ok(first.body.nextCursor);
  // new mail between the pages lands before the first page, not inside the next
  ids.push(await r.send({ to: 'pager@inbox.test', subject: 'late' }));
  const second = await r.json<Page>(`/api/inboxes/pager@inbox.test/messages?limit=2&cursor=${first.body.nextCursor}`);
  assert.deepEqual(second.body.messages.map((m) => m.subject), ['p2', 'p1']);
  const third = await r.json<Page>(`/api/inboxes/pager@inbox.test/messages?limit=2&cursor=${second.body.nextCursor}`);
  assert.deepEqual(third.body.messages.map((m) => m.subject), ['p0']);
  assert.equal(third.body.nextCursor, null);
  const latest = await r.json<{ id: string; subject: string }>('/api/inboxes/pager@inbox.test/messages/latest');
  assert.equal(latest.body.subject, 'late');
  assert.equal((await r.json('/api/inboxes/pager@inbox.test/messages?limit=0')).status, 400);
  assert.equal((await r.json('/api/inboxes/pager@inbox.test/messages?cursor=nope')).status, 400);
});

test('raw source: byte for byte what was sent (sha256), served as a message/rfc822 download', async () => {
  const raw = rawMessage({ From: 'a@src.test', To: 'raw@inbox.test', Subject: '=?UTF-8?Q?R=C3=A4w?=' }, 'line one\n.dotted line\nlast line with trailing spaces   \n\n');
  const id = await sendRaw('raw@inbox.test', raw);
  const res = await fetch(`${r.api}/api/messages/${id}/raw`);
  const bytes = Buffer.from(await res.arrayBuffer());
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'message/rfc822');
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="[^"]+\.eml"/);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), createHash('sha256').update(raw).digest('hex'));
  const meta = await r.json<{ subject: string; size: number }>(`/api/messages/${id}`);
  assert.equal(meta.body.subject, 'Räw', 'the subject is decoded');
  assert.equal(meta.body.size, Buffer.byteLength(raw));
});

test('text, HTML as sent, and sanitised HTML: scripts, handlers and remote images gone; both with a CSP that runs no script', async () => {
  const html = '<p onclick="steal()">Hello <b>there</b><script>alert(1)</script><img src="https://tracker.test/p.gif"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><a href="javascript:alert(2)">x</a><a href="https://ok.test/">ok</a></p>';
  const id = await r.send({ to: 'html@inbox.test', subject: 'html', text: 'Plain words', html });
  const text = await fetch(`${r.api}/api/messages/${id}/text`);
  assert.equal(text.headers.get('content-type'), 'text/plain; charset=utf-8');
  assert.equal((await text.text()).trim(), 'Plain words');

  const original = await fetch(`${r.api}/api/messages/${id}/html`);
  assert.equal(original.headers.get('content-type'), 'text/html; charset=utf-8');
  assert.match(original.headers.get('content-security-policy') ?? '', /^sandbox; default-src 'none'/);
  assert.equal(original.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(await original.text(), html);

  const clean = await fetch(`${r.api}/api/messages/${id}/html?sanitized=1`);
  const csp = clean.headers.get('content-security-policy') ?? '';
  assert.match(csp, /^sandbox; default-src 'none'; img-src data: cid:/);
  const body = await clean.text();
  for (const gone of ['<script', 'alert(1)', 'onclick', 'tracker.test', 'javascript:']) assert.ok(!body.includes(gone), `${gone} removed: ${body}`);
  assert.match(body, /<b>there<\/b>/);
  assert.match(body, /src="data:image\/gif/);
  assert.match(body, /href="https:\/\/ok\.test\/"/);

  const none = await r.send({ to: 'html@inbox.test', text: 'no html here' });
  assert.equal((await fetch(`${r.api}/api/messages/${none}/html`)).status, 404);
});

test('headers come in order, duplicates kept, values unfolded', async () => {
  const raw = 'Received: from a by b\r\nReceived: from c by d\r\nX-Folded: one\r\n two\r\nSubject: h\r\n\r\nbody\r\n';
  const id = await sendRaw('headers@inbox.test', raw);
  const res = await r.json<{ name: string; value: string }[]>(`/api/messages/${id}/headers`);
  assert.deepEqual(res.body, [
    { name: 'Received', value: 'from a by b' },
    { name: 'Received', value: 'from c by d' },
    { name: 'X-Folded', value: 'one two' },
    { name: 'Subject', value: 'h' },
  ]);
});

test('attachments: listed with size and sha256, served as the exact bytes with their type, as downloads', async () => {
  const pdf = Buffer.from('%PDF-1.4 fake pdf bytes \x00\x01\x02');
  const id = await r.send({ to: 'files@inbox.test', attachments: [{ filename: 'report ä.pdf', content: pdf, contentType: 'application/pdf' }, { filename: 'note.txt', content: 'hi' }] });
  const meta = await r.json<{ attachments: { index: number; filename: string; contentType: string; size: number; sha256: string }[] }>(`/api/messages/${id}`);
  const [a, b] = meta.body.attachments;
  assert.deepEqual([a?.filename, a?.contentType, a?.size, a?.sha256], ['report ä.pdf', 'application/pdf', pdf.length, createHash('sha256').update(pdf).digest('hex')]);
  assert.equal(b?.filename, 'note.txt');
  const res = await fetch(`${r.api}/api/messages/${id}/attachments/0`);
  assert.equal(res.headers.get('content-type'), 'application/pdf');
  assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="report _\.pdf"; filename\*=UTF-8''report%20%C3%A4\.pdf$/);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), pdf);
  assert.equal((await fetch(`${r.api}/api/messages/${id}/attachments/7`)).status, 404);
});

test('a message asked for under another inbox is 404; by id alone it shows every inbox', async () => {
  const id = await r.send({ to: 'owner@inbox.test' });
  assert.equal((await r.json(`/api/inboxes/owner@inbox.test/messages/${id}`)).status, 200);
  assert.equal((await r.json(`/api/inboxes/intruder@inbox.test/messages/${id}`)).status, 404);
  assert.equal((await r.json('/api/messages/not-an-id')).status, 404);
  assert.equal((await r.json('/api/messages/0000000000000000AAAAAAAAAAAAAAAAAAAAAA')).status, 404);
});

test('delete one: 204, then 404; empty an inbox: how many went', async () => {
  const id = await r.send({ to: 'del@inbox.test' });
  await r.send({ to: 'del@inbox.test' });
  await r.send({ to: 'del@inbox.test' });
  assert.equal((await r.json(`/api/messages/${id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await r.json(`/api/messages/${id}`, { method: 'DELETE' })).status, 404);
  assert.equal((await r.json(`/api/messages/${id}`)).status, 404);
  const emptied = await r.json<{ deleted: number }>('/api/inboxes/del@inbox.test/messages', { method: 'DELETE' });
  assert.deepEqual(emptied.body, { deleted: 2 });
  assert.deepEqual((await r.json<Page>('/api/inboxes/del@inbox.test/messages')).body.messages, []);
});

test('plus tags: the tagged address lists only mail with that tag; the base address lists all', async () => {
  await r.send({ to: 'tagged+a@inbox.test', subject: 'for a' });
  await r.send({ to: 'tagged+b@inbox.test', subject: 'for b' });
  const a = await r.json<Page & { tag: string }>('/api/inboxes/tagged+a@inbox.test/messages');
  assert.equal(a.body.tag, 'a');
  assert.deepEqual(a.body.messages.map((m) => m.subject), ['for a']);
  assert.equal((await r.json<Page>('/api/inboxes/tagged@inbox.test/messages')).body.messages.length, 2);
});

test('the API rate limit per client IP answers 429 with Retry-After', async () => {
  const limited = await startReceiver({ api: { ratePerMinute: 5 } });
  try {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 7; i++) {
      const res = await fetch(`${limited.api}/api/inboxes/x@inbox.test/messages`);
      statuses.push(res.status);
      if (res.status === 429) retryAfter = res.headers.get('retry-after');
      await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert.ok(Number(retryAfter) > 0, `Retry-After: ${retryAfter}`);
    const body = await (await fetch(`${limited.api}/api/inboxes/x@inbox.test/messages`)).json();
    assert.equal((body as { error: string }).error, 'TooManyRequests');
    assert.equal((await fetch(`${limited.api}/health`)).status, 200, 'only the inbox API is limited');
  } finally {
    await limited.stop();
  }
});

test('with a token, the inbox API wants it as a bearer token or in Mailsac-Key', async () => {
  const guarded = await startReceiver({}, { api: { token: 's3cret' } });
  try {
    const url = `${guarded.api}/api/inboxes/x@inbox.test/messages`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { 'mailsac-key': 'wrong' } })).status, 401);
    assert.equal((await fetch(url, { headers: { 'mailsac-key': 's3cret' } })).status, 200);
    assert.equal((await fetch(url, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
    assert.equal((await fetch(`${guarded.api}/health`, { headers: { 'mailsac-key': 's3cret' } })).status, 401, 'Mailsac-Key is for /api only');
  } finally {
    await guarded.stop();
  }
});
