/**
 * F1b, unit side: the batch that makes a message visible is written with { sync: true }, in one
 * batch with its metadata, rows and schedule keys; concurrent messages may share that batch (group
 * commit) but never skip the sync. Observed on a real ClassicLevel by recording the options every
 * batch call gets (the store is opened on a database that records them) — the write itself still happens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { keys } from '../../lib/queue/keys.js';
import { QueueStore } from '../../lib/queue/store.js';
import { openQueueDb } from '../../lib/queue/open.js';
import type { ChainedBatch } from 'classic-level';
import type { BatchOp } from '../../lib/store/group-commit.js';
import { createLogger } from '../../lib/log/logger.js';
import { storeMessage, tempQueuePath } from '../helpers/queue-fixtures.js';
import { checkWhole } from '../helpers/verify-queue.js';

interface Recorded {
  keys: string[];
  sync: boolean | undefined;
}

/**
 * Opens a store on a database whose every batch is recorded (keys and sync option), then let
 * through unchanged: both forms, the array form and the chained batch (lib/store/write-ops.ts).
 */
async function openRecording(queuePath: string): Promise<{ store: QueueStore; seen: Recorded[] }> {
  const seen: Recorded[] = [];
  const openDb = async (dir: string) => {
    const db = await openQueueDb(dir);
    const batch = db.batch.bind(db) as (...args: unknown[]) => unknown;
    Object.defineProperty(db, 'batch', {
      value: (...args: unknown[]) => {
        if (args.length) {
          const [ops, options] = args as [BatchOp[], { sync?: boolean } | undefined];
          seen.push({ keys: ops.map((o) => o.key), sync: options?.sync });
          return batch(...args);
        }
        const chained = batch() as ChainedBatch<typeof db, string, Buffer>;
        const keys: string[] = [];
        const put = chained.put.bind(chained);
        const del = chained.del.bind(chained);
        const write = chained.write.bind(chained);
        Object.assign(chained, {
          put: (key: string, value: Buffer) => (keys.push(key), put(key, value)),
          del: (key: string) => (keys.push(key), del(key)),
          write: (options?: { sync?: boolean }) => {
            seen.push({ keys, sync: options?.sync });
            return write(options ?? {});
          },
        });
        return chained;
      },
    });
    return db;
  };
  const store = await QueueStore.open(queuePath, { chunkSizeBytes: 1024, logger: createLogger('silent'), openDb });
  return { store, seen };
}

test('commitMessage writes body tail, metadata, rows and schedule keys in one batch with sync: true', async () => {
  const queuePath = tempQueuePath();
  const { store, seen } = await openRecording(queuePath);
  try {
    const id = store.newId();
    await storeMessage(store, id, Buffer.from('line of text\r\n'.repeat(300)));
    const commits = seen.filter((b) => b.keys.includes(keys.meta(id)));
    assert.equal(commits.length, 1, 'one batch makes the message visible');
    assert.equal(commits[0]!.sync, true);
    assert.ok(commits[0]!.keys.includes(keys.row(id, 1)) && commits[0]!.keys.includes(keys.row(id, 2)), 'rows are in the same batch');
    assert.equal(commits[0]!.keys.filter((k) => k.startsWith('s:')).length, 2, 'schedule keys are in the same batch');
    assert.equal(await checkWhole(store, id, 2), undefined);
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});

test('concurrent commits share synced batches (group commit) and every batch is synced', async () => {
  const queuePath = tempQueuePath();
  const { store, seen } = await openRecording(queuePath);
  try {
    const ids = Array.from({ length: 50 }, () => store.newId());
    await Promise.all(ids.map((id) => storeMessage(store, id, Buffer.from(`body of ${id}\r\n`))));
    assert.ok(seen.length > 0 && seen.length <= ids.length, `${seen.length} batches for ${ids.length} messages`);
    assert.ok(seen.every((b) => b.sync === true), 'every batch is synced');
    for (const id of ids) assert.equal(await checkWhole(store, id, 2), undefined);
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});

test('deleteMessage takes metadata, rows and schedule keys out in one synced batch', async () => {
  const queuePath = tempQueuePath();
  const { store, seen } = await openRecording(queuePath);
  try {
    const id = store.newId();
    await storeMessage(store, id, Buffer.from('x\r\n'.repeat(1000)));
    seen.length = 0;
    assert.ok(await store.deleteMessage(id), "deleteMessage returns the rows it removed");
    const removal = seen.find((b) => b.keys.includes(keys.meta(id)));
    assert.ok(removal, 'one batch removes the metadata');
    assert.equal(removal.sync, true);
    assert.equal(await store.getMeta(id), undefined);
    assert.deepEqual(await store.getRows(id), []);
    assert.equal(store.counters.totals().queued, 0);
  } finally {
    await store.close();
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});
