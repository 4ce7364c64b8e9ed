/**
 * Issue 8, item 3: a report whose write fails (here a real full tmpfs: ENOSPC) must not leave its
 * rows due at once, or a full disk turns into a delivery storm (every failed write hands the
 * delivery out again, at once). The rows stay under their lease while the write is tried again,
 * later and later; once space is back the report lands, and the rows wait for their retry time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger } from '../../lib/log/logger.js';
import { Outcomes } from '../../lib/queue/outcomes.js';
import { Scheduler } from '../../lib/queue/scheduler.js';
import type { Job } from '../../lib/channel/protocol.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { messageRecords, openStore } from '../helpers/queue-fixtures.js';
import { fillUp } from '../fault/disk-full.js';

const logger = createLogger('silent');

async function next(scheduler: Scheduler, owner: string, ms: number): Promise<Job | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const none = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  const got = await Promise.race([scheduler.fetch(owner, 'default'), none]);
  clearTimeout(timer);
  return got;
}

test('a report that cannot be written keeps its rows leased and is written again once the disk has room; the delivery is not handed out meanwhile', { timeout: 60_000 }, async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'sluice-outcome-retry-'));
  const disk = mountTmpfs(path.join(base, 'disk'), 8);
  if (typeof disk === 'string') {
    rmSync(base, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  const { config } = loadConfig({ appDir: base, env: {}, overrides: { queue: { retrySchedule: ['10m'] }, zones: { default: { processes: 0 } } } });
  const store = await openStore(path.join(disk.dir, 'queue'));
  const scheduler = new Scheduler(store, config, logger);
  const outcomes = new Outcomes(store, config, logger, []);
  const filler = path.join(disk.dir, 'filler');
  try {
    // fifty recipients of one domain: one job, and a report of some 100 KB (long replies)
    const id = store.newId();
    const writer = store.bodyWriter(id);
    await writer.write(Buffer.from('body\r\n'));
    const { meta, rows } = messageRecords(id, Array.from({ length: 50 }, (_, i) => `r${i}@slow.test`), { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: 'x' });
    await store.commitMessage(meta, rows, writer);
    scheduler.offer(meta, rows);
    const job = (await next(scheduler, 'w1', 2000))!;
    assert.equal(job.rows.length, 50);

    fillUp(filler);
    const results = job.rows.map((r) => ({ seq: r.seq, outcome: 'deferred' as const, response: `451 4.3.0 ${'busy '.repeat(190)}` }));
    let settled: 'resolved' | 'rejected' | undefined;
    const settling = scheduler.settle(job.leaseId, 'w1', (lease) => outcomes.apply(lease, results)).then(
      () => (settled = 'resolved'),
      () => (settled = 'rejected'),
    );
    // a second worker asks meanwhile: the delivery must not come back while its report is pending
    const again = await next(scheduler, 'w2', 2500);
    t.diagnostic(`after 2.5 s on the full disk: report ${settled ?? 'pending'}, rows leased ${scheduler.isLeased(id, 1)}, handed out again ${again ? 'yes' : 'no'}`);
    assert.equal(again, undefined, 'not handed out again while its report could not be written');
    assert.equal(scheduler.isLeased(id, 1), true, 'the rows stay leased');
    assert.equal(settled, undefined, 'the report is still being written');

    unlinkSync(filler);
    await settling;
    assert.equal(settled, 'resolved');
    assert.equal(scheduler.isLeased(id, 1), false);
    const stored = await store.getRows(id);
    assert.equal(stored.length, 50);
    assert.ok(stored.every((r) => r.attempts === 1 && r.due > Date.now() + 5 * 60_000), 'deferred once, due at its retry time');
    assert.equal(await next(scheduler, 'w2', 300), undefined, 'and not before');
  } finally {
    outcomes.close();
    scheduler.close();
    await store.close();
    rmSync(filler, { force: true });
    disk.unmount();
    rmSync(base, { recursive: true, force: true });
  }
});
