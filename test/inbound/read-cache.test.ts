/**
 * The inbox store's read cache (lib/inbound/store/read-cache.ts): what a read found in LevelDB is
 * kept only if no write touched it meanwhile, every write's change reaches what is kept, a reader's
 * snapshot never changes under it, and the bounds hold. Then the whole store over a real LevelDB:
 * listings served from the cache while mail arrives, is marked read and is deleted, equal what a
 * fresh process reads from disk.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_ENTRIES, ReadCache } from '../../lib/inbound/store/read-cache.js';
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage } from '../../lib/inbound/store/types.js';
import { tempDir } from '../helpers/master.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

const entry = (read = false): InboxEntry => ({ rcpts: ['a@inbox.test'], tags: [], read });
const rows = (...ids: string[]) => ids.map((id) => ({ id, entry: entry() }));
const envelope = (id: string, inboxes = ['a@inbox.test']): InboundEnvelope => ({ id, receivedAt: 0, size: 1, chunks: 1, from: '', rcpts: [], inboxes, client: { ip: '127.0.0.1', helo: 'x', tls: false } });
const summary = (subject: string) => ({ subject }) as MessageSummary;

test('a fill is kept only when no write touched what it read while it read', () => {
  const cache = new ReadCache();
  const quiet = cache.beginFill(['a'], []);
  cache.touch(['x9'], ['b']); // another inbox: no bearing on this fill
  cache.installInbox(quiet, 'a', rows('03', '02'));
  cache.endFill(quiet);
  assert.deepEqual(cache.inbox('a')?.ids, ['03', '02']);

  const raced = cache.beginFill(['c'], []);
  cache.touch(['04'], ['c']); // a message for c was written while c was read
  const seen = cache.installInbox(raced, 'c', rows('02'));
  cache.endFill(raced);
  assert.deepEqual(seen.ids, ['02'], 'the reader still gets what it read');
  assert.equal(cache.inbox('c'), undefined, 'but it is not kept');

  // records, id by id: only the touched one is left out
  const records = cache.beginFill([], ['01', '02']);
  cache.envelopeChanged(envelope('02'));
  cache.installEnvelope(records, '01', envelope('01'));
  cache.installEnvelope(records, '02', envelope('02'));
  cache.endFill(records);
  assert.ok(cache.envelope('01'));
  assert.equal(cache.envelope('02'), undefined);

  // a clear while a fill reads: nothing of it is kept
  const cleared = cache.beginFill(['d'], ['05']);
  cache.clear();
  cache.installInbox(cleared, 'd', rows('05'));
  cache.installSummary(cleared, '05', summary('s'));
  cache.endFill(cleared);
  assert.equal(cache.inbox('d'), undefined);
  assert.equal(cache.summary('05'), undefined);
  assert.equal(cache.inbox('a'), undefined, 'a clear forgets everything');
});

test("writes reach a cached inbox in id order, and a reader's snapshot never changes", () => {
  const cache = new ReadCache();
  const fill = cache.beginFill(['a'], []);
  cache.installInbox(fill, 'a', rows('05', '03'));
  cache.endFill(fill);
  const before = cache.inbox('a')!;

  cache.added('07', new Map([['a', entry()]]));
  cache.added('04', new Map([['a', entry()]])); // committed after 07, arrived before it
  cache.added('07', new Map([['a', entry(true)]])); // told twice: still once
  assert.deepEqual(cache.inbox('a')!.ids, ['07', '05', '04', '03']);
  assert.equal(cache.inbox('a')!.entries.get('07')!.read, true);
  assert.deepEqual(before.ids, ['05', '03'], 'the snapshot a reader holds is unchanged');

  cache.entryChanged('a', '05', entry(true));
  assert.equal(cache.inbox('a')!.entries.get('05')!.read, true);
  cache.entryChanged('a', '99', entry(true)); // not in the inbox: not added by a flag change
  assert.ok(!cache.inbox('a')!.entries.has('99'));

  cache.dropped('04', ['a'], undefined);
  assert.deepEqual(cache.inbox('a')!.ids, ['07', '05', '03']);
  assert.equal(ReadCache.countNewer(cache.inbox('a')!, '05'), 1);
  assert.equal(ReadCache.countNewer(cache.inbox('a')!, '04'), 2, 'an id no longer there still has its place');
  assert.equal(ReadCache.startAfter(cache.inbox('a')!, '05'), 2);
  assert.equal(ReadCache.startAfter(cache.inbox('a')!, '06'), 1);
});

test('envelopes and summaries follow their message; a summary is kept only for a message read before', () => {
  const cache = new ReadCache();
  const fill = cache.beginFill([], ['01']);
  cache.installEnvelope(fill, '01', envelope('01', ['a', 'b']));
  cache.endFill(fill);
  cache.summaryChanged('01', summary('parsed'));
  cache.summaryChanged('02', summary('never read'));
  assert.equal(cache.summary('01')?.subject, 'parsed');
  assert.equal(cache.summary('02'), undefined);

  cache.dropped('01', ['a'], envelope('01', ['b']));
  assert.deepEqual(cache.envelope('01')?.inboxes, ['b'], 'what is left of it');
  cache.dropped('01', ['b'], undefined);
  assert.equal(cache.envelope('01'), undefined);
  assert.equal(cache.summary('01'), undefined);
});

test('bounds: an inbox past MAX_ENTRIES is not kept, and is tried again once a removal shrinks it', () => {
  const cache = new ReadCache();
  const ids = Array.from({ length: MAX_ENTRIES }, (_, i) => String(i).padStart(6, '0')).reverse();
  const fill = cache.beginFill(['big'], []);
  cache.installInbox(fill, 'big', rows(...ids));
  cache.endFill(fill);
  assert.equal(cache.inbox('big')?.ids.length, MAX_ENTRIES);
  cache.added('999999', new Map([['big', entry()]]));
  assert.equal(cache.inbox('big'), undefined, 'one more and it goes');
  assert.ok(cache.isOversized('big'));
  cache.dropped('000000', ['big'], undefined);
  assert.ok(!cache.isOversized('big'));

  // inboxes: least recently used go first
  for (let i = 0; i < 150; i++) {
    const f = cache.beginFill([`i${i}`], []);
    cache.installInbox(f, `i${i}`, rows('01'));
    cache.endFill(f);
  }
  assert.equal(cache.inbox('i0'), undefined);
  assert.ok(cache.inbox('i149'));
});

const receivers: TestReceiver[] = [];
after(() => Promise.all(receivers.map((r) => r.stop())));

interface Listing {
  messages: { id: string; read: boolean; subject: string }[];
}

test('listings served from the cache while mail arrives, is marked read and deleted equal what a fresh process reads from disk', async () => {
  const dir = tempDir();
  const r = await startReceiver({}, {}, dir);
  receivers.push(r);
  const list = async (inbox: string) => (await r.json<Listing>(`/api/inboxes/${inbox}/messages?limit=200`)).body.messages.map((m) => `${m.id} ${m.read} ${m.subject}`);
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await r.send({ to: 'a@inbox.test', subject: `first ${i}` }));
  assert.equal((await list('a@inbox.test')).length, 5, 'read once: the cache holds the inbox now');
  await list('b@inbox.test');

  // readers in a loop beside every kind of write, so fills and writes interleave
  let reading = true;
  const readers = Array.from({ length: 4 }, async () => {
    while (reading) await Promise.all([list('a@inbox.test'), list('b@inbox.test')]);
  });
  for (let round = 0; round < 12; round++) {
    const [both, alone] = await Promise.all([r.send({ to: ['a@inbox.test', 'b@inbox.test'], subject: `both ${round}` }), r.send({ to: 'a@inbox.test', subject: `alone ${round}` })]);
    ids.push(both, alone);
    const ops: Promise<unknown>[] = [r.json(`/api/addresses/a@inbox.test/messages/${alone}/read/true`, { method: 'PUT' })];
    if (round % 3 === 0) ops.push(r.json(`/api/messages/${ids[round]}`, { method: 'DELETE' }));
    if (round % 4 === 1) ops.push(r.json(`/api/inboxes/a@inbox.test/messages/${both}`, { method: 'DELETE' }));
    const done = await Promise.all(ops);
    assert.ok(done.every((d) => [200, 204].includes((d as { status: number }).status)));
  }
  reading = false;
  await Promise.all(readers);
  const warm = { a: await list('a@inbox.test'), b: await list('b@inbox.test') };
  assert.ok(warm.a.length > 10 && warm.b.length > 5);
  assert.ok(warm.a.some((line) => line.includes(' true ')), 'some were marked read');

  await r.m.master.stop(); // the app dir stays for the next process
  receivers.pop();
  const fresh = await startReceiver({}, {}, dir);
  receivers.push(fresh);
  const cold = async (inbox: string) => (await fresh.json<Listing>(`/api/inboxes/${inbox}/messages?limit=200`)).body.messages.map((m) => `${m.id} ${m.read} ${m.subject}`);
  assert.deepEqual(warm, { a: await cold('a@inbox.test'), b: await cold('b@inbox.test') });
});

test('parsed messages are kept within their byte budget, and go with their message', () => {
  const cache = new ReadCache();
  const parsed = (text: string) => ({ text }) as unknown as ParsedMessage;
  const fill = cache.beginFill([], ['big', ...Array.from({ length: 40 }, (_, i) => `m${i}`)]);
  cache.installParsed(fill, 'big', parsed('huge'), 300 * 1024);
  assert.equal(cache.parsedMessage('big'), undefined, 'one record over 256 KB is not kept');
  for (let i = 0; i < 40; i++) cache.installParsed(fill, `m${i}`, parsed(`m${i}`), 200 * 1024);
  cache.endFill(fill);
  assert.equal(cache.parsedMessage('m0'), undefined, '8 MB offered, the oldest went');
  assert.equal(cache.parsedMessage('m39')?.text, 'm39');
  assert.equal(cache.parsedMessage('m20')?.text, 'm20', '20 of 200 KB fit in 4 MB');
  assert.equal(cache.parsedMessage('m19'), undefined);
  cache.dropped('m39', ['a'], undefined);
  assert.equal(cache.parsedMessage('m39'), undefined);
});
