/**
 * A clean stop: the master asks its workers to finish; each finishes the deliveries in flight,
 * reports them, and leaves by itself at once (not at the master's 10 s kill deadline). What was
 * in flight is recorded as delivered, so nothing is sent twice after a restart.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter } from '../helpers/delivery-kit.js';
import { processAlive } from '../helpers/child-master.js';

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
