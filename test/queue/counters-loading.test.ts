/**
 * The count at open in the background (QueueStore.open with countInBackground, QueueCounters):
 * the store is usable at once, the counters say they are loading, changes made meanwhile are not
 * lost or counted twice, and GET /health and GET /queue/:zone say "still counting" instead of
 * partial figures. Per-domain entries go when a domain has no row left.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fillQueue } from '../../bench/queue-fill.js';
import { createApi } from '../../lib/api/server.js';
import { healthRoutes } from '../../lib/api/health-routes.js';
import { queueRoutes } from '../../lib/api/queue-routes.js';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger } from '../../lib/log/logger.js';
import { DiskGuard } from '../../lib/queue/disk-space.js';
import { QueueCounters } from '../../lib/queue/counters.js';
import { QueueStore } from '../../lib/queue/store.js';
import { ZoneSelector } from '../../lib/zones/select.js';
import { openStore, storeMessage } from '../helpers/queue-fixtures.js';
import { tempDir } from '../helpers/master.js';

const ROWS = 120_000;
/** one queue for the tests below, in an app dir: the first only reads it, the second changes it */
const dir = tempDir();
const queuePath = path.join(dir, 'queue');
let firstId = '';
before(async () => {
  const filled = await fillQueue(queuePath, { rows: ROWS, rowsPerMessage: 10, domains: 40, deferredShare: 0.5, dueFrom: Date.now() + 3_600_000, bodyBytes: 200, chunkSizeBytes: 1024 });
  firstId = filled.firstId;
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('GET /health and GET /queue/:zone say the queue is still being counted, then give the figures', { timeout: 120_000 }, async () => {
  {
    const { config } = loadConfig({ appDir: dir, env: {}, overrides: { queue: { path: 'queue', minFreeSpace: 0 }, log: { level: 'silent' }, dns: { servers: ['127.0.0.1:9'] } } });
    const logger = createLogger('silent');
    const store = await QueueStore.open(queuePath, { chunkSizeBytes: 1024, logger, countInBackground: true });
    const app = createApi(config, logger, [healthRoutes({ store, disk: new DiskGuard(queuePath, 0) }), queueRoutes({ store, zones: new ZoneSelector(config), logger })]);
    try {
      const health = await app.inject({ method: 'GET', url: '/health' });
      const zone = await app.inject({ method: 'GET', url: '/queue/default' });
      assert.equal(store.counters.loading, true, 'both requests were answered while counting');
      assert.equal(health.statusCode, 200);
      const h = health.json();
      assert.equal(h.queue.loading, true);
      assert.equal(h.queue.queued, null);
      assert.equal(h.queue.deferred, null);
      assert.equal(typeof h.queue.countedRows, 'number');
      assert.equal(zone.statusCode, 503);
      assert.match(zone.json().message, /still being counted .* try again in a moment/);

      await store.counted;
      const after = (await app.inject({ method: 'GET', url: '/health' })).json();
      assert.equal(after.queue.loading, false);
      assert.equal(after.queue.queued + after.queue.deferred, ROWS);
      const z = await app.inject({ method: 'GET', url: '/queue/default' });
      assert.equal(z.statusCode, 200);
      assert.equal(z.json().domains.length, 40);
    } finally {
      await app.close();
      await store.close();
    }
  }
});

test('a store counting in the background takes changes meanwhile; once counted the figures equal a full count', { timeout: 120_000 }, async () => {
  {
    const store = await QueueStore.open(queuePath, { chunkSizeBytes: 1024, logger: createLogger('silent'), countInBackground: true });
    try {
      assert.equal(store.counters.loading, true, 'open returned before the rows were counted');
      // while the count runs: a new message (2 rows) and the oldest message deleted (10 rows, in the snapshot)
      await storeMessage(store, store.newId(), Buffer.from('hello\r\n'), ['a@new.test', 'b@new.test']);
      const removed = await store.deleteMessage(firstId);
      assert.equal(removed?.length, 10);
      const stillLoading = store.counters.loading;
      const counted = await store.counted;
      assert.equal(counted.rows, ROWS, 'the count read the rows as they were at open');
      assert.equal(store.counters.loading, false);
      const totals = store.counters.totals();
      assert.equal(totals.queued + totals.deferred, ROWS + 2 - 10, `counted: ${JSON.stringify(totals)} (changes during the count: ${stillLoading})`);
      const live = store.counters.snapshot('default');
      await store.close();
      const reopened = await openStore(queuePath);
      try {
        const full = reopened.counters.snapshot('default');
        assert.deepEqual({ ...live, processed: 0 }, { ...full, processed: 0 }, 'the same figures as a count of the queue as it is now');
      } finally {
        await reopened.close();
      }
    } finally {
      if (store.isOpen) await store.close();
    }
  }
});

test('a domain has a counter entry only while it has rows, also when a change comes before the count reaches its row', () => {
  const c = new QueueCounters();
  c.beginLoad();
  const row = { zone: 'default', domain: 'x.test', status: 'queued' as const };
  // an outcome removed the row before the count read it: -1 now, +1 from the snapshot later
  c.add(row, -1);
  assert.equal(c.domainCount('default'), 1, 'the pending -1 is kept, not dropped');
  c.load(row);
  c.endLoad();
  assert.equal(c.domainCount('default'), 0, 'no rows, no entry');
  for (let i = 0; i < 1000; i++) c.add({ zone: 'default', domain: `d${i}.test`, status: 'deferred' }, 1);
  assert.equal(c.domainCount('default'), 1000);
  for (let i = 0; i < 1000; i++) c.move({ zone: 'default', domain: `d${i}.test` }, 'deferred', 'queued');
  for (let i = 0; i < 1000; i++) c.add({ zone: 'default', domain: `d${i}.test`, status: 'queued' }, -1);
  assert.equal(c.domainCount('default'), 0, 'every entry released');
  assert.deepEqual(c.totals(), { queued: 0, deferred: 0, held: 0 });
});
