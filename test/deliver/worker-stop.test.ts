/**
 * A clean stop: the master asks its workers to finish; each finishes the deliveries in flight,
 * reports them, and leaves by itself at once (not at the master's 10 s kill deadline). What was
 * in flight is recorded as delivered, so nothing is sent twice after a restart.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/master.js';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor } from '../helpers/delivery-kit.js';
import { processAlive } from '../helpers/sluice-child.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('stop during deliveries: in-flight ones finish and are recorded, workers exit by themselves within a second or two', async () => {
  const mx = await startFakeMx({ mode: { kind: 'delayDot', ms: 800 }, tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({ zones: { default: { processes: 2, connections: 3, route: mx.route } } });
  let stopped = false;
  cleanup.push(async () => {
    if (!stopped) await m.stop();
  });
  const smtp = submitter(m.smtpPort);
  await Promise.all([0, 1, 2, 3].map((i) => smtp.send({ to: `r${i}@dest.test`, testId: `stop-${i}` })));
  smtp.close();
  await mx.waitUntil(() => mx.transactions.filter((t) => t.dataEndAt !== undefined).length >= 4, 5000, () => 'deliveries not in flight');
  const pids = m.master.supervisor!.pids().map((p) => p.pid);
  const t0 = Date.now();
  await m.stop();
  stopped = true;
  const stopMs = Date.now() - t0;
  console.log(`# clean stop with 4 deliveries in flight: ${stopMs} ms`);
  assert.ok(stopMs < 3000, `stopped in ${stopMs} ms`);
  assert.ok(pids.every((pid) => !processAlive(pid)), 'workers gone');
  assert.equal(mx.transactions.filter((t) => t.outcome === 'accepted').length, 4, 'the in-flight deliveries completed');
  assert.equal(m.events('DELIVERED').length, 4, 'and were recorded before the workers left');
});

test('a worker that cannot start is replaced at once a few times, then with growing back-off (no hot loop)', async () => {
  // a sender plugin whose init throws: the master (which loads only "main" plugins) starts, and
  // every worker exits with an error right after its start
  const dir = tempDir();
  mkdirSync(path.join(dir, 'plugins'));
  writeFileSync(path.join(dir, 'plugins', 'broken.mjs'), "export const title = 'broken';\nexport function init() { throw new Error('broken on purpose'); }\n");
  const m = await startLoggedMaster(
    {
      plugins: { broken: { enabled: ['sender'], path: 'plugins/broken.mjs' } },
      zones: { default: { processes: 1 } },
    },
    dir,
  );
  cleanup.push(() => m.stop());
  const t0 = Date.now();
  // five exits: four immediate restarts and the first back-off. A worker start takes a few hundred
  // ms, more on a busy machine, so this waits for them rather than a fixed time
  await waitFor(() => m.events('WORKER_EXITED').length >= 5, 15_000, 'five worker exits');
  const exits = m.events('WORKER_EXITED');
  const delays = exits.map((e) => Number(e.restartInMs));
  console.log(`# crash loop: ${m.events('WORKER_STARTED').length} starts in ${Date.now() - t0} ms, restart delays ${delays.join(',')} ms`);
  assert.ok(exits.length >= 5, 'the failing worker was restarted');
  assert.ok(exits.every((e) => e.code === 1), 'it failed on its own (exit 1)');
  assert.deepEqual(delays.slice(0, 4), [0, 0, 0, 0], 'the first restarts are immediate');
  assert.ok(delays.slice(4).every((d, i) => d >= 1000 * 2 ** i), `then they back off: ${delays.join(',')}`);
  assert.ok(m.events('WORKER_STARTED').length <= 8, 'no hot loop');
});
