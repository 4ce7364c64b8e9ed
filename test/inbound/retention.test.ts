/**
 * Retention (lib/inbound/retention.ts and the read-side rules in inbox.ts): a message past its
 * TTL is not served at once and is removed by the sweeper, raw bytes and attachments with it; an
 * inbox keeps its newest maxPerInbox; the store keeps under maxStoreSize by dropping the oldest.
 * And ids keep their order when the clock steps back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { InboxIds, inboxIdTime, isInboxId } from '../../lib/inbound/store/ids.js';
import { waitFor } from '../helpers/delivery-kit.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

const receivers: TestReceiver[] = [];
after(() => Promise.all(receivers.map((r) => r.stop())));

const withAttachment = (to: string, subject: string, bytes = 2048) => ({
  to,
  subject,
  attachments: [{ filename: 'data.bin', content: Buffer.alloc(bytes, subject) }],
});

async function gone(r: TestReceiver, id: string): Promise<boolean> {
  const fp = await r.inbox.footprint(id);
  return !fp.envelope && fp.raw === 0 && !fp.parsed && !fp.summary && !fp.pending;
}

test('ids sort by arrival, carry 128 random bits, and never go back when the clock does', () => {
  const ids = new InboxIds();
  const a = ids.next(1_000_000);
  const b = ids.next(1_000_000);
  const c = ids.next(999_000); // the clock stepped back a second
  assert.ok(a < b && b < c, 'in order');
  assert.ok([a, b, c].every(isInboxId));
  assert.equal(inboxIdTime(c), 1_000_000);
  const resumed = new InboxIds(c).next(5);
  assert.ok(resumed > c, 'a restart continues after the newest stored id');
  assert.notEqual(a.slice(16), b.slice(16));
  // the random parts come from a pool drawn 4 KB at a time: no part is ever handed out twice
  const parts = new Set(Array.from({ length: 2000 }, () => ids.next().slice(16)));
  assert.equal(parts.size, 2000);
});

test('past the TTL a message is not served at once, and the sweeper removes all of it', async () => {
  const r = await startReceiver({ ttl: '1500ms' });
  receivers.push(r);
  const id = await r.send(withAttachment('ttl@inbox.test', 'short-lived'));
  assert.equal((await r.json(`/api/messages/${id}/attachments/0`)).status, 200);
  assert.ok(!(await gone(r, id)));
  await new Promise((resolve) => setTimeout(resolve, 1600));
  assert.equal((await r.json(`/api/messages/${id}`)).status, 404, 'expired on read');
  assert.equal((await r.json(`/api/messages/${id}/raw`)).status, 404);
  assert.deepEqual((await r.json<{ messages: unknown[] }>('/api/inboxes/ttl@inbox.test/messages')).body.messages, []);
  await waitFor(() => gone(r, id), 5000, 'the sweeper removed raw bytes, parse and attachments');
});

test('an inbox keeps its newest maxPerInbox: older ones are not listed, then removed with their attachments', async () => {
  const r = await startReceiver({ maxPerInbox: 3 });
  receivers.push(r);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await r.send(withAttachment('capped@inbox.test', `m${i}`)));
  const listed = (await r.json<{ messages: { id: string }[] }>('/api/inboxes/capped@inbox.test/messages')).body.messages.map((m) => m.id);
  assert.deepEqual(listed, [ids[4], ids[3], ids[2]], 'the newest three, newest first');
  assert.equal((await r.json(`/api/inboxes/capped@inbox.test/messages/${ids[0]}`)).status, 404);
  await r.inbox.sweep();
  assert.ok(await gone(r, ids[0]!));
  assert.ok(await gone(r, ids[1]!));
  assert.ok(!(await gone(r, ids[2]!)));
  // the oldest kept one is still whole
  assert.equal((await r.json(`/api/messages/${ids[2]}/attachments/0`)).status, 200);
});

test('the store keeps under maxStoreSize by removing the oldest messages', async () => {
  const r = await startReceiver({ maxStoreSize: '1MB', maxSize: '1MB' });
  receivers.push(r);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await r.send({ to: `big${i}@inbox.test`, text: 'x'.repeat(300 * 1024) }));
  await r.inbox.sweep();
  await waitFor(() => r.inbox.stats().bytes <= 1024 * 1024, 5000, 'under the size limit');
  assert.ok(await gone(r, ids[0]!), 'the oldest went');
  assert.ok(!(await gone(r, ids[4]!)), 'the newest stayed');
  assert.ok(r.inbox.stats().evicted.size >= 1);
});

test('the cap takes many at once: a message past the cap of one inbox stays whole in another, listings stay true', async () => {
  const r = await startReceiver({ maxPerInbox: 3 });
  receivers.push(r);
  const list = async (inbox: string) => (await r.json<{ messages: { id: string }[] }>(`/api/inboxes/${inbox}/messages`)).body.messages.map((m) => m.id);
  const shared = await r.send(withAttachment(['busy@inbox.test', 'quiet@inbox.test'].join(', '), 'shared'));
  const busy: string[] = [];
  // more than one removal batch past the cap
  for (let i = 0; i < 70; i++) busy.push(await r.send({ to: 'busy@inbox.test', subject: `b${i}` }));
  assert.deepEqual(await list('busy@inbox.test'), busy.slice(-3).reverse());
  await r.inbox.sweep();
  assert.equal(r.inbox.stats().evicted.cap, 68, 'all past the cap went, the shared one from busy@ only');
  for (const id of busy.slice(0, -3)) assert.ok(await gone(r, id));
  assert.deepEqual(await list('busy@inbox.test'), busy.slice(-3).reverse());
  assert.deepEqual(await list('quiet@inbox.test'), [shared]);
  const whole = await r.json<{ inboxes: string[] }>(`/api/messages/${shared}`);
  assert.deepEqual(whole.body.inboxes, ['quiet@inbox.test'], 'its envelope names the inbox left');
  assert.equal((await r.json(`/api/messages/${shared}/attachments/0`)).status, 200);
  assert.equal(r.inbox.stats().messages, 4);
});
