/**
 * The scheduler's two ways in: fresh offers handed out from memory, and the disk scan for
 * everything else. On a real store: a message goes out once however it is found, rows a worker
 * gave back go before fresh mail, a deferred row comes back when due, a deleted one never goes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger } from '../../lib/log/logger.js';
import { Outcomes } from '../../lib/queue/outcomes.js';
import { Scheduler } from '../../lib/queue/scheduler.js';
import type { QueueStore } from '../../lib/queue/store.js';
import type { Job, RowResult } from '../../lib/channel/protocol.js';
import { messageRecords, openStore, tempQueuePath } from '../helpers/queue-fixtures.js';

const logger = createLogger('silent');

async function setup() {
  const appDir = mkdtempSync(path.join(tmpdir(), 'sluice-sched-'));
  const { config } = loadConfig({ appDir, env: {}, overrides: { queue: { retrySchedule: ['300ms'] }, zones: { default: { processes: 0 } } } });
  const store = await openStore(tempQueuePath());
  const scheduler = new Scheduler(store, config, logger);
  const outcomes = new Outcomes(store, config, logger, []);
  store.onDelete((id) => scheduler.forget(id));
  const stop = async () => {
    scheduler.close();
    await store.close();
  };
  return { store, scheduler, outcomes, stop };
}

/** Commits a message (one row per recipient) and offers it, as ingest and the master do. */
async function queue(store: QueueStore, scheduler: Scheduler, recipients: string[], headerBytes = 0): Promise<string> {
  const id = store.newId();
  const writer = store.bodyWriter(id);
  await writer.write(Buffer.from('body\r\n'));
  const { meta, rows } = messageRecords(id, recipients, { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: 'x' });
  if (headerBytes) meta.headers = bigHeaders(id, headerBytes);
  await store.commitMessage(meta, rows, writer);
  scheduler.offer(meta, rows);
  return id;
}

/** The next job for `owner`, or undefined when none comes within `ms`. */
async function next(scheduler: Scheduler, owner: string, ms = 300): Promise<Job | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const none = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  const got = await Promise.race([scheduler.fetch(owner, 'default'), none]);
  clearTimeout(timer);
  return got;
}

/**
 * The ids of the jobs handed out to one worker asking again and again: `expected` of them (each
 * may take a disk scan: seconds on a loaded machine), then nothing more for a while.
 */
async function drain(scheduler: Scheduler, expected: number): Promise<string[]> {
  const seen: string[] = [];
  while (seen.length < expected) {
    const job = await next(scheduler, 'w1', 5000);
    if (!job) return seen;
    seen.push(job.id);
  }
  const extra = await next(scheduler, 'w1', 300);
  if (extra) seen.push(extra.id);
  return seen;
}

function settle(scheduler: Scheduler, outcomes: Outcomes, owner: string, job: Job, outcome: RowResult['outcome']): Promise<void> {
  const results = job.rows.map((r) => ({ seq: r.seq, outcome, response: outcome === 'delivered' ? '250 ok' : '451 later' }));
  return scheduler.settle(job.leaseId, owner, (lease) => outcomes.apply(lease, results));
}

test('a fresh message goes out once, whether it was handed out from memory or found again on disk', async () => {
  const { store, scheduler, outcomes, stop } = await setup();
  try {
    const id = await queue(store, scheduler, ['a@x.test', 'b@y.test']);
    const first = (await next(scheduler, 'w1'))!;
    assert.equal(first.id, id);
    // the worker goes away: its rows are due again, on disk; the other domain is still offered
    scheduler.releaseOwner('w1');
    const jobs = [(await next(scheduler, 'w2'))!, (await next(scheduler, 'w2'))!];
    assert.deepEqual(jobs.map((j) => j.domain).sort(), ['x.test', 'y.test']);
    for (const job of jobs) await settle(scheduler, outcomes, 'w2', job, 'delivered');
    assert.equal(await next(scheduler, 'w2'), undefined, 'nothing is handed out twice');
    assert.equal(await store.getMeta(id), undefined, 'the message is gone');
  } finally {
    await stop();
  }
});

test('rows a worker gave back go out before fresh mail queued after them', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    const a1 = await queue(store, scheduler, ['a1@x.test']);
    const a2 = await queue(store, scheduler, ['a2@x.test']);
    assert.deepEqual([(await next(scheduler, 'w1'))!.id, (await next(scheduler, 'w1'))!.id], [a1, a2]);
    const b = await queue(store, scheduler, ['b@x.test']);
    const c = await queue(store, scheduler, ['c@x.test']);
    scheduler.releaseOwner('w1');
    // four workers ask at once, as a replacement worker does: the scan that the first one
    // starts runs out of workers after a1; the others must get a2 before the fresh b and c
    const got = await Promise.all(['w2', 'w3', 'w4', 'w5'].map((w) => next(scheduler, w)));
    assert.deepEqual(got.map((j) => j?.id), [a1, a2, b, c]);
  } finally {
    await stop();
  }
});

test('a deferred row comes back when it is due, and only then', async () => {
  const { store, scheduler, outcomes, stop } = await setup();
  try {
    const id = await queue(store, scheduler, ['a@x.test']);
    const job = (await next(scheduler, 'w1'))!;
    const deferredAt = Date.now();
    await settle(scheduler, outcomes, 'w1', job, 'deferred');
    const again = await next(scheduler, 'w1', 3000);
    assert.equal(again?.id, id);
    assert.equal(again?.attempts, 1);
    assert.ok(Date.now() - deferredAt >= 280, `retried after ${Date.now() - deferredAt} ms (schedule 300 ms)`);
  } finally {
    await stop();
  }
});

test('a message deleted while it waits in memory is never handed out', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    const id = await queue(store, scheduler, ['a@x.test']);
    await store.deleteMessage(id);
    assert.equal(await next(scheduler, 'w1'), undefined);
  } finally {
    await stop();
  }
});

test('a message deleted while its delivery is under way: the late result brings nothing back', async () => {
  const { store, scheduler, outcomes, stop } = await setup();
  try {
    const id = await queue(store, scheduler, ['a@x.test', 'b@x.test']);
    const job = (await next(scheduler, 'w1'))!;
    await store.deleteMessage(id);
    await settle(scheduler, outcomes, 'w1', job, 'deferred');
    assert.deepEqual(await store.getRows(id), [], 'no row was written back');
    assert.equal(await store.getMeta(id), undefined);
    assert.equal(await next(scheduler, 'w1', 500), undefined, 'nothing comes due');
  } finally {
    await stop();
  }
});

test('past the in-memory bound (2,000 offers a zone), the rest is found on disk: every message goes out once', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    const ids: string[] = [];
    // no worker asks meanwhile: the offers pile up and overflow (a domain each: the leases are
    // never settled here, and one domain would stop at its connection limit)
    for (let i = 0; i < 2050; i += 50) {
      ids.push(...(await Promise.all(Array.from({ length: 50 }, (_, k) => queue(store, scheduler, [`r@d${i + k}.test`])))));
    }
    const seen = await drain(scheduler, ids.length);
    assert.equal(seen.length, ids.length, 'every message handed out');
    assert.equal(new Set(seen).size, ids.length, 'none twice');
  } finally {
    await stop();
  }
});

/** A header block of `bytes`, a flat string of its own (as one read from LevelDB or a socket is). */
function bigHeaders(id: string, bytes: number): string {
  const block = Buffer.alloc(bytes, 'x');
  block.write(`Subject: ${id}\r\nX-Filler: `);
  block.write('\r\n\r\n', bytes - 4);
  return block.toString('latin1');
}

/** Memory held by JavaScript (heap, and strings or buffers kept outside it) after a full collection. */
async function heldAfterGc(): Promise<number> {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  // a second pass, a turn later, frees what the first one's finalisers released (external strings)
  gc();
  await new Promise((r) => setImmediate(r));
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

test('fresh offers are bounded by bytes: 300 offers with 1 MB header blocks keep about 16 MB in memory, not 300', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    const before = await heldAfterGc();
    // offered with no worker waiting, as a burst of large-header mail is while every worker is busy
    for (let i = 0; i < 300; i++) {
      const id = store.newId();
      const { meta, rows } = messageRecords(id, [`r@d${i}.test`], { bodySize: 6, chunks: 1, bodyHash: 'x' });
      meta.headers = bigHeaders(id, 1024 * 1024);
      scheduler.offer(meta, rows);
    }
    const grownMb = ((await heldAfterGc()) - before) / 1024 / 1024;
    console.log(`# 300 offers of 1 MB headers: memory grew ${grownMb.toFixed(1)} MB`);
    assert.ok(grownMb < 32, `memory grew ${grownMb.toFixed(1)} MB`);
  } finally {
    await stop();
  }
});

test('offers past the byte bound are found on disk: every message goes out once', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await queue(store, scheduler, [`r@d${i}.test`], 1024 * 1024));
    const seen = await drain(scheduler, ids.length);
    assert.deepEqual([...seen].sort(), ids, 'every message handed out once');
  } finally {
    await stop();
  }
});

test('a backlog on disk does not hold fresh mail back: once it has waited half a second it goes on the next turn, and the backlog still goes out', async () => {
  const { store, scheduler, stop } = await setup();
  try {
    // 40 messages due now on disk only (a flush, an outage ending): not offered from memory
    const backlog: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = store.newId();
      const writer = store.bodyWriter(id);
      await writer.write(Buffer.from('body\r\n'));
      const { meta, rows } = messageRecords(id, [`r${i}@d${i}.test`], { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: 'x' });
      await store.commitMessage(meta, rows, writer);
      backlog.push(id);
    }
    const fresh = await queue(store, scheduler, ['new@fresh.test']);
    // asked at once: older work first
    assert.equal((await next(scheduler, 'w1'))!.id, backlog[0]);
    await new Promise((r) => setTimeout(r, 600));
    const order: (string | undefined)[] = [];
    for (let i = 0; i < 40; i++) order.push((await next(scheduler, 'w1', 5000))?.id);
    const at = order.indexOf(fresh);
    assert.ok(at >= 0 && at <= 1, `the fresh message went out at turn ${at}, not behind the backlog`);
    assert.deepEqual([...order].sort(), [...backlog.slice(1), fresh].sort(), 'the rest of the backlog went out too, each once');
    assert.equal(await next(scheduler, 'w1'), undefined);
  } finally {
    await stop();
  }
});
