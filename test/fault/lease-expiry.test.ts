/**
 * Issue 8, item 2: a delivery attempt must end well inside its lease. A tarpitting MX (it takes
 * the connection and never greets) holds an attempt for the greeting timeout at every address
 * of every MX host; with nothing bounding the attempt as a whole it outlived queue.leaseTimeout:
 * the rows were handed out again while the first attempt still ran (one more connection to the
 * slow host every leaseTimeout), and the first attempt's late report was dropped.
 *
 * Pass: the worker ends the attempt at delivery.attemptTimeout and reports it (deferred, with a
 * reply that says so); the lease never expires; the tarpit sees one connection until the retry.
 *
 * And when a lease does expire (a worker stalled: here a sender plugin that blocks the worker's
 * event loop once, past the lease), the master tells the worker to cancel and waits a grace
 * period: a report that comes then is recorded, not dropped, and the rows are not handed out a
 * second time meanwhile; a worker that stays silent past the grace is cut off and replaced.
 */
import { test, after } from 'node:test';
import path from 'node:path';
import assert from 'node:assert/strict';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, type LoggedMaster } from '../helpers/delivery-kit.js';
import { tempDir } from '../helpers/master.js';
import { userPlugin, writePlugin } from '../helpers/plugins.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('a tarpit MX: the attempt ends at delivery.attemptTimeout, inside the lease; one connection, no expired lease, the deferral recorded', { timeout: 60_000 }, async () => {
  const mx = await startFakeMx({ mode: 'silent', tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({
    queue: { leaseTimeout: '3s', retrySchedule: ['30s'], maxQueueTime: '5m' },
    delivery: { connectTimeout: '30s', greetingTimeout: '30s', socketTimeout: '30s', attemptTimeout: '1500ms', unreachableHold: '0s' },
    zones: { default: { processes: 1, connections: 5, connectionsPerDomain: 5, route: mx.route } },
  });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());
  const id = await smtp.send({ to: 'slow@tarpit.test', testId: 'tarpit-1' });

  await waitFor(() => m.events('DEFERRED').some((e) => e.id === id) || m.events('LEASE_EXPIRED').length >= 2, 15_000, 'the attempt ended');
  // a while longer: an attempt that outlives its lease shows as more connections and expiries
  await new Promise((r) => setTimeout(r, 4000));
  const deferred = m.events('DEFERRED').filter((e) => e.id === id);
  const expired = m.events('LEASE_EXPIRED');
  console.log(`# connections to the tarpit ${mx.connections.length}, leases expired ${expired.length}, deferrals ${deferred.length}: ${deferred.map((d) => `${d.durationMs} ms ${d.response}`).join('; ')}`);
  assert.equal(expired.length, 0, 'no lease expired');
  assert.equal(mx.connections.length, 1, 'one connection to the slow host');
  assert.equal(deferred.length, 1, 'the attempt was reported once');
  assert.ok(Number(deferred[0]!.durationMs) < 3000, `the attempt took ${deferred[0]!.durationMs} ms`);
  assert.match(String(deferred[0]!.response), /attemptTimeout/);
  const rows = await m.master.store.getRows(id);
  assert.equal(rows[0]!.attempts, 1);
  assert.ok(rows[0]!.due > Date.now() + 20_000, 'retried by the schedule, not at once');
});

/** Blocks the worker's event loop for blockMs in the first sender:fetch of all workers (a
 * marker file remembers it across a replacement): a stalled worker. */
const STALL_PLUGIN = `
import { existsSync, writeFileSync } from 'node:fs';
export const title = 'stall';
export function init(app) {
  app.addHook('sender:fetch', async () => {
    if (existsSync(app.config.marker)) return;
    writeFileSync(app.config.marker, 'stalled');
    const end = Date.now() + app.config.blockMs;
    while (Date.now() < end) {}
  });
}
`;

async function stalledWorker(leaseTimeout: string, blockMs: number): Promise<{ m: LoggedMaster; mx: FakeMx; id: string }> {
  const mx = await startFakeMx({ mode: 'silent', tls: false });
  cleanup.push(() => mx.stop());
  const dir = tempDir();
  const plugin = writePlugin(dir, 'stall.mjs', STALL_PLUGIN);
  const m = await startLoggedMaster(
    {
      queue: { leaseTimeout, retrySchedule: ['30s'], maxQueueTime: '5m' },
      delivery: { connectTimeout: '30s', greetingTimeout: '30s', socketTimeout: '30s', attemptTimeout: '2s', unreachableHold: '0s' },
      zones: { default: { processes: 1, connections: 5, connectionsPerDomain: 5, route: mx.route } },
      plugins: { stall: userPlugin(plugin, { blockMs, marker: path.join(dir, 'stalled') }, ['sender']) },
    },
    dir,
  );
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());
  const id = await smtp.send({ to: 'slow@tarpit.test', testId: `stall-${blockMs}` });
  return { m, mx, id };
}

test('a lease that expires while its worker is stalled: the worker is told to cancel, its late report is recorded, the rows are not handed out twice', { timeout: 60_000 }, async () => {
  // lease 8 s, grace 2 s: the worker comes back after 8.5 s, inside the grace
  const { m, mx, id } = await stalledWorker('8s', 8500);
  await waitFor(() => m.events('DEFERRED').some((e) => e.id === id) || m.events('LEASE_ABANDONED').length > 0, 20_000, 'the late report');
  const deferred = m.events('DEFERRED').filter((e) => e.id === id);
  console.log(`# expired ${m.events('LEASE_EXPIRED').length}, abandoned ${m.events('LEASE_ABANDONED').length}, deferrals ${deferred.map((d) => `${d.durationMs} ms: ${d.response}`).join('; ')}, connections ${mx.connections.length}`);
  assert.equal(m.events('LEASE_EXPIRED').length, 1, 'the lease expired');
  assert.equal(m.events('LEASE_ABANDONED').length, 0);
  assert.equal(deferred.length, 1, 'the late report was recorded');
  assert.ok(Number(deferred[0]!.durationMs) >= 8000, `it is the stalled attempt's report (${deferred[0]!.durationMs} ms)`);
  assert.ok(mx.connections.length <= 1, 'no second attempt beside the first');
  const rows = await m.master.store.getRows(id);
  assert.equal(rows[0]!.attempts, 1);
});

test('a worker that stays silent past the grace after a cancel is cut off and replaced; the delivery runs again', { timeout: 60_000 }, async () => {
  // lease 3 s, grace 1 s: the worker is stalled for 6 s
  const { m, id } = await stalledWorker('3s', 6000);
  await waitFor(() => m.events('LEASE_ABANDONED').length > 0, 10_000, 'the worker cut off');
  await waitFor(() => m.events('WORKER_EXITED').length > 0, 10_000, 'the stalled worker left');
  await waitFor(() => m.events('DEFERRED').some((e) => e.id === id), 15_000, 'the delivery ran again');
  const exited = m.events('WORKER_EXITED');
  assert.equal(exited[0]!.code, 0, 'it left on its own once it saw its channel closed');
  assert.equal(m.events('DEFERRED').filter((e) => e.id === id).length, 1, 'one report recorded: the stalled one could not report any more');
});
