/**
 * The scheduler's pump on a clock the test moves (lib/queue/clock.ts), over a real store: a
 * deferred row is not handed out before its time, and is handed out once the clock passes it
 * (the zone's timer wakes the pump, whose scan finds the row); an expired lease without an
 * enforcer makes its rows due again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger } from '../../lib/log/logger.js';
import { Outcomes } from '../../lib/queue/outcomes.js';
import { Scheduler } from '../../lib/queue/scheduler.js';
import type { Job } from '../../lib/channel/protocol.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { messageRecords, openStore, tempQueuePath } from '../helpers/queue-fixtures.js';

const logger = createLogger('silent');

async function setup() {
  const appDir = mkdtempSync(path.join(tmpdir(), 'sluice-sched-clock-'));
  const { config } = loadConfig({ appDir, env: {}, overrides: { queue: { retrySchedule: ['10m'], leaseTimeout: '1h' }, zones: { default: { processes: 0 } } } });
  const store = await openStore(tempQueuePath());
  const clock = new ManualClock(Date.now());
  const scheduler = new Scheduler(store, config, logger, clock);
  const outcomes = new Outcomes(store, config, logger, [], { now: () => clock.now() });
  const id = store.newId();
  const writer = store.bodyWriter(id);
  await writer.write(Buffer.from('body\r\n'));
  const { meta, rows } = messageRecords(id, ['a@x.test'], { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: 'x' });
  for (const row of rows) row.due = clock.now();
  await store.commitMessage(meta, rows, writer);
  scheduler.offer(meta, rows);
  return { store, scheduler, outcomes, clock, id, stop: async () => (scheduler.close(), await store.close()) };
}

/** Resolves with whatever the promise gave by the time the event loop has settled (real time). */
async function settledSoon<T>(p: Promise<T>, ms = 500): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const none = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  const got = await Promise.race([p, none]);
  clearTimeout(timer);
  return got;
}

/**
 * Moves the clock by `ms`, then on in small steps, letting the pump's reads finish between them
 * (a timer that fires mid-advance runs the pump at that moment's time; its next timer is set
 * after the advance), until `p` gives a job or 20 steps passed.
 */
async function stepUntil(clock: ManualClock, p: Promise<Job>, ms: number): Promise<Job | undefined> {
  clock.advance(ms);
  for (let i = 0; i < 20; i++) {
    const got = await settledSoon(p, 100);
    if (got) return got;
    clock.advance(100);
  }
  return undefined;
}

test('a deferred row waits for its time on the clock, then goes out', async () => {
  const { scheduler, outcomes, clock, id, stop } = await setup();
  try {
    const job = (await settledSoon(scheduler.fetch('w1', 'default')))!;
    assert.equal(job.id, id);
    await scheduler.settle(job.leaseId, 'w1', (lease) => outcomes.apply(lease, [{ seq: 1, outcome: 'deferred', response: '451 later' }]));
    const waiting = scheduler.fetch('w1', 'default');
    clock.advance(9 * 60_000);
    assert.equal(await settledSoon(waiting), undefined, 'not before its time');
    const again = await stepUntil(clock, waiting, 60_000);
    assert.equal(again?.id, id, 'handed out once the clock passed its due time');
    assert.equal(again?.attempts, 1);
  } finally {
    await stop();
  }
});

test('an expired lease (no enforcer) makes its rows due again', async () => {
  const { scheduler, clock, id, stop } = await setup();
  try {
    const job = (await settledSoon(scheduler.fetch('w1', 'default')))!;
    assert.equal(scheduler.isLeased(id, 1), true);
    clock.advance(3_600_000);
    assert.equal(scheduler.lease(job.leaseId), undefined);
    const again = await stepUntil(clock, scheduler.fetch('w2', 'default'), 0);
    assert.equal(again?.id, id);
  } finally {
    await stop();
  }
});
