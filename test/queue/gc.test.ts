/**
 * Garbage collection of leftovers: body chunks with no metadata, older than gcGrace, are
 * collected; chunks of an ingest still running are never collected, however old their id; bodies
 * of stored messages are never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { QueueIds } from '../../lib/queue/ids.js';
import type { QueueStore } from '../../lib/queue/store.js';
import { startMaster } from '../helpers/master.js';
import { messageRecords, openStore, storeMessage, tempQueuePath } from '../helpers/queue-fixtures.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { checkWhole } from '../helpers/verify-queue.js';

const HOUR = 3_600_000;

async function bodyIds(store: QueueStore): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const id of store.bodyIds()) ids.add(id);
  return ids;
}

test('leftovers of an ingest cut short by a crash are collected once older than the grace period', async () => {
  const queuePath = tempQueuePath();
  let store = await openStore(queuePath);
  const ids = new QueueIds();
  const leftover = ids.next(Date.now() - 2 * HOUR);
  const kept = ids.next(Date.now() - 2 * HOUR);
  const young = ids.next();
  try {
    await storeMessage(store, kept, Buffer.from('stored\r\n'.repeat(500)));
    for (const id of [leftover, young]) {
      const writer = store.bodyWriter(id);
      await writer.write(Buffer.alloc(5000, 0x61)); // full chunks go to LevelDB as they fill
    }
    // the process dies here: no commit, no discard; a new process opens the queue
    await store.close();
    store = await openStore(queuePath);
    assert.deepEqual([...(await bodyIds(store))].sort(), [kept, leftover, young].sort());

    assert.equal(await store.collectGarbage(Date.now(), HOUR), 1, 'only the old leftover goes');
    assert.deepEqual([...(await bodyIds(store))].sort(), [kept, young].sort());
    assert.equal(await checkWhole(store, kept, 2), undefined, 'a stored message keeps its body');
    assert.equal(await store.collectGarbage(Date.now() + 2 * HOUR, HOUR), 1, 'the young one once it is old');
    assert.deepEqual([...(await bodyIds(store))], [kept]);
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});

test('the collector finds bodies without metadata by walking both key families side by side, whatever their order', async () => {
  const queuePath = tempQueuePath();
  let store = await openStore(queuePath);
  const ids = new QueueIds();
  // stored and leftover interleaved, a leftover first and last, several chunks on some
  const plan = ['left', 'stored', 'stored', 'left', 'left', 'stored', 'left'] as const;
  const made = plan.map((kind) => ({ kind, id: ids.next(Date.now() - 2 * HOUR) }));
  try {
    for (const [i, { kind, id }] of made.entries()) {
      const body = Buffer.alloc(i % 2 ? 9000 : 1500, 0x61 + i); // one chunk (1 KB) or several
      if (kind === 'stored') await storeMessage(store, id, body);
      else await store.bodyWriter(id).write(body);
    }
    await store.close();
    store = await openStore(queuePath);
    const orphans: string[] = [];
    for await (const id of store.bodiesWithoutMeta()) orphans.push(id);
    assert.deepEqual(orphans, made.filter((m) => m.kind === 'left').map((m) => m.id));
    assert.equal(await store.collectGarbage(Date.now(), HOUR), 4);
    for (const { kind, id } of made) if (kind === 'stored') assert.equal(await checkWhole(store, id, 2), undefined);
    assert.deepEqual([...(await bodyIds(store))].sort(), made.filter((m) => m.kind === 'stored').map((m) => m.id).sort());
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});

test('chunks of an ingest in flight are never collected, however old their id', async () => {
  const queuePath = tempQueuePath();
  const store = await openStore(queuePath);
  try {
    const id = new QueueIds().next(Date.now() - 5 * HOUR);
    const writer = store.bodyWriter(id);
    await writer.write(Buffer.alloc(4096, 0x62));
    assert.equal(await store.collectGarbage(Date.now(), HOUR), 0);
    assert.ok((await bodyIds(store)).has(id));
    const { meta, rows } = messageRecords(id, ['a@dest.test', 'b@dest.test'], { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: '' });
    await store.commitMessage(meta, rows, writer);
    assert.equal(await store.collectGarbage(Date.now() + 10 * HOUR, HOUR), 0, 'a stored body is never garbage');
    assert.equal(await store.getMeta(id).then((m) => m?.chunks), 4);
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});

test('a collection running while an SMTP message streams in leaves its chunks alone; the message arrives whole', { timeout: 30_000 }, async () => {
  const m = await startMaster({ queue: { chunkSize: '4KB' } });
  try {
    const c = await SmtpTalk.connect(m.smtpPort);
    await c.expect(220);
    await c.send('EHLO gc.test', 250);
    await c.send('MAIL FROM:<s@src.test>', 250);
    await c.send('RCPT TO:<a@dest.test>', 250);
    await c.send('RCPT TO:<b@dest.test>', 250);
    await c.send('DATA', 354);
    c.write('Subject: in flight\r\nX-Test-Id: gc-1\r\n\r\n' + 'abcdefghij'.repeat(10).concat('\r\n').repeat(300));
    // wait until some chunks are in LevelDB, then collect as if everything were hours old
    const store = m.master.store;
    const t0 = Date.now();
    // (more lines keep coming: the end-of-DATA scan passes a read on once the next one arrives)
    while ((await bodyIds(store)).size === 0 && Date.now() - t0 < 5000) {
      c.write('more of the body\r\n');
      await new Promise((r) => setTimeout(r, 10));
    }
    const inflight = [...(await bodyIds(store))];
    assert.equal(inflight.length, 1, 'the message has chunks in LevelDB before its end');
    assert.equal(await store.collectGarbage(Date.now() + 24 * HOUR, 1000), 0);
    c.write('the end\r\n.\r\n');
    const reply = await c.expect(250);
    const id = /queued as ([0-9a-f]+)/.exec(reply.text)?.[1];
    assert.equal(id, inflight[0]);
    c.close();
    assert.equal(await checkWhole(store, id!, 2), undefined);
  } finally {
    await m.stop();
  }
});

test('a pass reads only the bodies that may be leftovers: from six hours before the newest id at open, then from the last pass on', async () => {
  const queuePath = tempQueuePath();
  let store = await openStore(queuePath);
  const now = Date.now();
  const ids = new QueueIds();
  const ancient = ids.next(now - 8 * HOUR);
  const crashed = ids.next(now - 5 * HOUR);
  const newest = ids.next(now);
  try {
    for (const id of [ancient, crashed]) await store.bodyWriter(id).write(Buffer.alloc(5000, 0x61));
    await storeMessage(store, newest, Buffer.from('stored\r\n'));
    await store.close();
    store = await openStore(queuePath);
    assert.equal(await store.collectGarbage(now, HOUR), 1, 'the leftover within six hours of the newest id goes');
    assert.deepEqual([...(await bodyIds(store))].sort(), [ancient, newest].sort(), 'one older than that window is not looked at');
    // after a pass, only ids from the grace period on are read again
    const late = new QueueIds(newest).next(now + 10);
    const writer = store.bodyWriter(late);
    await writer.write(Buffer.alloc(5000, 0x62));
    writer.done(); // its ingest ended without a commit and without clearing its chunks
    assert.equal(await store.collectGarbage(now + 3 * HOUR, HOUR), 1, 'a leftover of this process is found by the next pass');
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});
