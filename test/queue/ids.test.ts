/**
 * Queue ids (lib/queue/ids.ts) and the store's refusal to reuse one: ids of a generator strictly
 * increase whatever the clock does, stay above the floor they start from, and a body writer with
 * an id the queue has already (a message, or chunks left by an interrupted ingest) writes nothing
 * and its commit fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { QueueIds, queueIdTime } from '../../lib/queue/ids.js';
import { QueueIdTakenError } from '../../lib/queue/store.js';
import { messageRecords, openStore, storeMessage, tempQueuePath } from '../helpers/queue-fixtures.js';
import { checkWhole } from '../helpers/verify-queue.js';

test('ids strictly increase while the clock steps back and forth', () => {
  const ids = new QueueIds();
  const clock = [1000, 1001, 1000, 999, 5, 1001, 1002, 1002, 2000];
  const out = clock.map((ms) => ids.next(ms));
  for (let i = 1; i < out.length; i++) assert.ok(out[i]! > out[i - 1]!, `${out[i - 1]} then ${out[i]}`);
  assert.equal(queueIdTime(out[4]!), 1001, 'a clock behind keeps the last millisecond');
  assert.equal(queueIdTime(out.at(-1)!), 2000, 'and follows the clock again once it is ahead');
});

test('more than 65,536 ids in one millisecond borrow the next millisecond and stay unique', () => {
  const ids = new QueueIds();
  let last = '';
  for (let i = 0; i < 70_000; i++) {
    const id = ids.next(42);
    assert.ok(id > last);
    last = id;
  }
  assert.equal(queueIdTime(last), 43);
});

test('a generator started with a floor issues ids above it, even with a clock far behind', () => {
  const floor = new QueueIds().next(Date.now() + 3_600_000);
  const ids = new QueueIds(floor);
  const next = ids.next(Date.now());
  assert.ok(next > floor, `${next} > ${floor}`);
  assert.equal(queueIdTime(next), queueIdTime(floor));
});

test('the store never reuses an id: a second message under a queued id, or over leftover chunks, is refused and nothing is overwritten', async () => {
  const queuePath = tempQueuePath();
  let store = await openStore(queuePath);
  try {
    const queued = store.newId();
    await storeMessage(store, queued, Buffer.from('the first message\r\n'.repeat(200)));
    await assert.rejects(storeMessage(store, queued, Buffer.from('another one\r\n'.repeat(300)), ['x@other.test']), QueueIdTakenError);
    assert.equal(await checkWhole(store, queued, 2), undefined, 'the queued message is whole');

    // chunks of an ingest cut short by a crash, under an id a new message then gets
    const leftover = store.newId();
    const cut = store.bodyWriter(leftover);
    await cut.write(Buffer.alloc(5000, 0x61));
    await store.close();
    store = await openStore(queuePath);
    const writer = store.bodyWriter(leftover);
    await assert.rejects(writer.write(Buffer.alloc(5000, 0x62)), QueueIdTakenError);
    const { meta, rows } = messageRecords(leftover, ['y@other.test'], { bodySize: 5000, chunks: 5, bodyHash: 'x' });
    await assert.rejects(store.commitMessage(meta, rows, writer), QueueIdTakenError);
    await writer.discard();
    assert.equal(await store.getMeta(leftover), undefined, 'no metadata was written');
    const chunks: Buffer[] = [];
    for await (const c of store.readBody(leftover)) chunks.push(c);
    assert.ok(chunks.length > 0 && chunks.every((c) => c.every((b) => b === 0x61)), 'the leftover chunks are untouched (the collector takes them)');

    const fresh = store.newId();
    assert.ok(fresh > leftover && fresh > queued, 'a reopened store issues ids above everything in it');
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});
