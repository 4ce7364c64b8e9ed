/**
 * Serving a zone from disk (lib/queue/disk-serving.ts) over a real store, on a clock the test
 * moves: a pass hands each waiting worker one message to one domain and records what it learnt in
 * the zone's disk state; taken and offered rows are skipped; a row taken while its job was being
 * read is never handed out, and a connection counted for a job that fell through is given back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiskServing, type DiskServingOptions } from '../../lib/queue/disk-serving.js';
import type { QueueStore } from '../../lib/queue/store.js';
import { messageRecords, openStore, tempQueuePath } from '../helpers/queue-fixtures.js';
import { servingKit } from '../helpers/serving.js';

async function setup() {
  const store = await openStore(tempQueuePath());
  const kit = servingKit(2, Date.now());
  const offered = new Set<string>();
  const unclaimed: string[] = [];
  const options = (over: Partial<DiskServingOptions> = {}): DiskServingOptions => ({
    ...kit.deps,
    store,
    isTaken: (id, seq) => kit.leases.isTaken(id, seq),
    isOffered: (id, seq) => offered.has(`${id}:${seq}`),
    unclaim: (_zone, domain) => unclaimed.push(domain),
    ...over,
  });
  /** commits a message whose rows are due now on the test's clock */
  const commit = async (recipients: string[]): Promise<string> => {
    const id = store.newId();
    const writer = store.bodyWriter(id);
    await writer.write(Buffer.from('body\r\n'));
    const { meta, rows } = messageRecords(id, recipients, { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: 'x' });
    for (const row of rows) row.due = kit.clock.now();
    await store.commitMessage(meta, rows, writer);
    return id;
  };
  return { ...kit, store, options, commit, offered, unclaimed, stop: () => store.close() };
}

test('a pass hands each waiting worker one message to one domain and marks the disk read', async () => {
  const { options, commit, ask, state, handed, clock, stop } = await setup();
  try {
    const a = await commit(['1@x.test', '2@y.test', '3@x.test']);
    ask('w1', 'w2');
    const unread = await new DiskServing(options()).serve('default', state);
    assert.equal(unread, false);
    assert.deepEqual(
      handed.map((h) => [h.owner, h.job.id, h.job.domain, h.job.rows.map((r) => r.seq)]),
      [
        ['w1', a, 'x.test', [1, 3]],
        ['w2', a, 'y.test', [2]],
      ],
    );
    assert.deepEqual([state.disk.dirty, state.disk.blocked, state.disk.scannedUpTo], [false, false, clock.now()]);
  } finally {
    await stop();
  }
});

test('leased, pinned and offered rows are skipped; with no worker left the disk stays dirty', async () => {
  const { options, commit, ask, state, handed, leases, offered, stop } = await setup();
  try {
    const a = await commit(['1@x.test', '2@x.test', '3@x.test']);
    const b = await commit(['1@y.test']);
    const c = await commit(['1@z.test']);
    leases.pin([{ id: a, seq: 1 }]);
    offered.add(`${a}:2`);
    ask('w1', 'w2');
    await new DiskServing(options()).serve('default', state);
    assert.deepEqual(
      handed.map((h) => [h.job.id, h.job.rows.map((r) => r.seq)]),
      [
        [a, [3]],
        [b, [1]],
      ],
    );
    assert.equal(state.disk.dirty, true, `${c} is still due: the next pass goes on`);
  } finally {
    await stop();
  }
});

test('a domain at its limit is passed over and the disk marked blocked', async () => {
  const { options, commit, ask, state, handed, full, stop } = await setup();
  try {
    await commit(['1@x.test']);
    const b = await commit(['1@y.test']);
    full.add('x.test');
    ask('w1', 'w2');
    await new DiskServing(options()).serve('default', state);
    assert.deepEqual(handed.map((h) => h.job.id), [b]);
    assert.equal(state.disk.blocked, true);
    assert.deepEqual(state.waiters.map((w) => w.owner), ['w2']);
  } finally {
    await stop();
  }
});

test('a row taken while its job was read is not handed out; its worker waits on and the connection is given back', async () => {
  const { options, commit, ask, state, handed, leases, unclaimed, store, stop } = await setup();
  try {
    const a = await commit(['1@x.test']);
    ask('w1');
    // an operator's change pins the row between the scan and the read of its job
    const readJob: QueueStore['readJob'] = (zone, id, entries) => {
      leases.pin([{ id: a, seq: 1 }]);
      return store.readJob(zone, id, entries);
    };
    await new DiskServing(options({ store: { scanDue: (...args) => store.scanDue(...args), readJob } })).serve('default', state);
    assert.equal(handed.length, 0);
    assert.deepEqual(unclaimed, ['x.test']);
    assert.deepEqual(state.waiters.map((w) => w.owner), ['w1'], 'back at the head of the queue');
  } finally {
    await stop();
  }
});

test('a worker that left during the scan gets nothing; its connection is given back and the disk stays dirty', async () => {
  const { options, commit, ask, state, handed, unclaimed, store, stop } = await setup();
  try {
    await commit(['1@x.test']);
    ask('w1');
    async function* scanDue(...args: Parameters<QueueStore['scanDue']>) {
      yield* store.scanDue(...args);
      state.waiters.length = 0; // withdrawn while the pass was reading
    }
    await new DiskServing(options({ store: { scanDue, readJob: (...args) => store.readJob(...args) } })).serve('default', state);
    assert.equal(handed.length, 0);
    assert.deepEqual(unclaimed, ['x.test']);
    assert.equal(state.disk.dirty, true);
  } finally {
    await stop();
  }
});
