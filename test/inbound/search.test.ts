/**
 * Search (lib/inbound/search/query.ts, api/search-routes.ts): the language parses, fields match
 * what they name, a quoted-printable or base64 body is found by its plain words, pages go on with
 * a cursor, private inboxes stay out without their key, and DELETE by query removes what matches
 * and nothing else.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuery, QueryError } from '../../lib/inbound/search/query.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 } });
});
after(() => r.stop());

interface Hit {
  id: string;
  subject: string;
  inboxes: string[];
}
interface Page {
  messages: Hit[];
  nextCursor: string | null;
}

const search = (q: string, extra = '', headers: Record<string, string> = {}) => r.json<Page>(`/api/search?q=${encodeURIComponent(q)}${extra}`, { headers });

async function sendRaw(to: string, raw: string): Promise<string> {
  const c = await r.session();
  await c.send('MAIL FROM:<news@qp.test>', 250);
  await c.send(`RCPT TO:<${to}>`, 250);
  await c.send('DATA', 354);
  c.write(raw.replace(/\r?\n/g, '\r\n') + '\r\n.\r\n');
  const id = /queued as (\S+)/.exec((await c.expect(250)).text)![1]!;
  c.close();
  return id;
}

test('the query language: fields, phrases, negation, dates, and clear errors', () => {
  const q = parseQuery('reset "your password" -spam to:Alice@Sluice.test from:shop subject:"Hi there" has:attachment after:2026-12-01 before:2026-12-03T10:00:00Z');
  assert.deepEqual(q.terms.map((t) => [t.kind, t.value, t.not]), [
    ['word', 'reset', false],
    ['word', 'your password', false],
    ['word', 'spam', true],
    ['to', 'alice@sluice.test', false],
    ['from', 'shop', false],
    ['subject', 'hi there', false],
    ['has', 'attachment', false],
  ]);
  assert.equal(q.inbox, 'alice@sluice.test');
  assert.equal(q.after, Date.parse('2026-12-01T00:00:00Z'));
  assert.equal(q.before, Date.parse('2026-12-03T10:00:00Z'));
  for (const bad of ['', 'color:red', 'has:wings', 'before:someday', 'subject:']) assert.throws(() => parseQuery(bad), QueryError, bad);
});

test('a quoted-printable or base64 body is found by its plain words', async () => {
  const qp = await sendRaw('readers@inbox.test', ['Subject: Opening', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: quoted-printable', '', 'Our new caf=C3=A9 opens =', 'on Monday: come and see.'].join('\n'));
  const b64 = await sendRaw('readers@inbox.test', ['Subject: Secret recipe', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: base64', '', Buffer.from('Add a pinch of saffron to the risotto.').toString('base64')].join('\n'));
  assert.deepEqual((await search('café opens on monday')).body.messages.map((m) => m.id), [qp]);
  assert.deepEqual((await search('"pinch of saffron"')).body.messages.map((m) => m.id), [b64]);
  assert.deepEqual((await search('saffron to:readers@inbox.test')).body.messages.map((m) => m.id), [b64], 'by the inbox');
});

test('fields: to, from, subject, has:attachment, dates, negation; newest first, pages with a cursor', async () => {
  const t0 = Date.now() - 1;
  const a = await r.send({ from: 'orders@shop.test', to: 'fields@inbox.test', subject: 'Order confirmed', text: 'thanks' });
  const b = await r.send({ from: 'news@shop.test', to: 'fields@inbox.test', subject: 'Weekly news', text: 'thanks', attachments: [{ filename: 'a.txt', content: 'x' }] });
  const c = await r.send({ from: 'orders@shop.test', to: 'other@inbox.test', cc: 'fields@inbox.test', subject: 'Order shipped', text: 'thanks' });
  const ids = async (q: string) => (await search(q)).body.messages.map((m) => m.id);
  assert.deepEqual(await ids('from:orders@shop.test'), [c, a]);
  // the Cc recipient got it too: it is in that inbox
  assert.deepEqual(await ids('to:fields@inbox.test'), [c, b, a], 'the inbox');
  assert.deepEqual(await ids('to:@inbox.test from:shop.test thanks'), [c, b, a]);
  assert.deepEqual(await ids('subject:order -subject:shipped'), [a]);
  assert.deepEqual(await ids('has:attachment from:shop.test'), [b]);
  assert.deepEqual(await ids(`from:shop.test after:${new Date(t0).toISOString()}`), [c, b, a]);
  assert.deepEqual(await ids(`from:shop.test before:${new Date(t0).toISOString()}`), []);
  const first = await search('from:shop.test', '&limit=2');
  assert.deepEqual(first.body.messages.map((m) => m.id), [c, b]);
  const second = await search('from:shop.test', `&limit=2&cursor=${first.body.nextCursor}`);
  assert.deepEqual(second.body.messages.map((m) => m.id), [a]);
  assert.equal((await search('color:red')).status, 400);
});

test('private inboxes are searched only with their key; DELETE by query removes what matches and nothing else', async () => {
  const res = await r.json<{ key: string }>('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'vault@inbox.test' }) });
  const hidden = await r.send({ to: 'vault@inbox.test', subject: 'zebra crossing' });
  const shown = await r.send({ to: 'open@inbox.test', subject: 'zebra stripes' });
  assert.deepEqual((await search('zebra')).body.messages.map((m) => m.id), [shown]);
  assert.deepEqual((await search('zebra', '', { 'x-inbox-key': res.body.key })).body.messages.map((m) => m.id), [shown, hidden]);

  const keep = await r.send({ to: 'purge@inbox.test', subject: 'keep me' });
  for (let i = 0; i < 3; i++) await r.send({ to: 'purge@inbox.test', subject: `old newsletter ${i}` });
  const del = await r.json<{ deleted: number; more: boolean }>(`/api/messages?q=${encodeURIComponent('to:purge@inbox.test subject:newsletter')}`, { method: 'DELETE' });
  assert.deepEqual(del.body, { deleted: 3, more: false });
  assert.deepEqual((await r.json<{ messages: { id: string }[] }>('/api/inboxes/purge@inbox.test/messages')).body.messages.map((m) => m.id), [keep]);
  assert.equal((await r.json('/api/messages?q=', { method: 'DELETE' })).status, 400, 'no query, no mass delete');
});
