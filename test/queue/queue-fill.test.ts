/**
 * The queue fixture (bench/queue-fill.ts) writes what ingest writes: every message whole (body,
 * metadata, rows, one schedule key per row), spread over the domains, zones and statuses asked
 * for, with ids in creation order. Benchmarks and the 1,000,000-row tests trust it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fillQueue } from '../../bench/queue-fill.js';
import { openStore, tempQueuePath } from '../helpers/queue-fixtures.js';
import { checkWhole } from '../helpers/verify-queue.js';

test('fillQueue writes whole messages with rows spread over domains, zones and statuses', async () => {
  const queuePath = tempQueuePath();
  try {
    const now = Date.now();
    const result = await fillQueue(queuePath, { rows: 20_000, rowsPerMessage: 4, domains: 50, zones: ['a', 'b'], deferredShare: 0.5, dueFrom: now + 60_000, bodyBytes: 3_000, chunkSizeBytes: 1_024 });
    assert.deepEqual({ messages: result.messages, rows: result.rows }, { messages: 5_000, rows: 20_000 });
    const store = await openStore(queuePath, 1_024);
    try {
      assert.deepEqual(await store.census(), { meta: 5_000, body: 15_000, row: 20_000, schedule: 20_000, hold: 0, suppression: 0 });
      let deferred = 0;
      for (const zone of ['a', 'b']) {
        const snap = store.counters.snapshot(zone);
        assert.equal(snap.queued + snap.deferred, 10_000, `zone ${zone} holds half the rows`);
        assert.ok(Math.abs(snap.deferred - 5_000) < 100, `about half of zone ${zone} is deferred: ${snap.deferred}`);
        assert.equal(snap.domains.length, 50, 'every domain has rows in every zone');
        deferred += snap.deferred;
      }
      assert.equal(deferred, 10_000, 'half of all rows are deferred');
      let previous = '';
      for await (const meta of store.listMessages({ limit: 5_000 })) {
        assert.ok(meta.id > previous && meta.created >= (previous ? Number.parseInt(previous.slice(0, 12), 16) : 0), 'ids follow creation time');
        previous = meta.id;
      }
      assert.equal(await checkWhole(store, result.firstId, 4), undefined, 'the first message is whole');
      assert.equal(await checkWhole(store, result.lastId, 4), undefined, 'the last message is whole');
      const due = [];
      for await (const entry of store.scanDue('a', now + 60_000 + 3_600_000)) due.push(entry);
      assert.equal(due.length, 10_000, 'every row of zone a is due within the spread');
      assert.equal(await store.nextDueAfter('a', 0).then((t) => t! >= now + 60_000), true, 'nothing is due before dueFrom');
    } finally {
      await store.close();
    }
  } finally {
    rmSync(path.dirname(queuePath), { recursive: true, force: true });
  }
});
