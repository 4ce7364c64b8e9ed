/**
 * F3: the data channel drops while every process lives (the master cuts
 * every worker connection, as `ss -K` would). Pass: each worker notices, cancels its deliveries
 * and exits on its own (exit code 0, not a crash), the supervisor replaces it, no message is
 * lost, duplicates stay within what was in flight, and no lease is left behind.
 *
 * A cut reaches the workers connected at that moment. A replacement is listed by the supervisor
 * as soon as it is forked, and on a loaded machine its start (loading its modules, connecting,
 * hello) can take seconds: cut before that and it connects afterwards, is never cut, and "old
 * workers exited" waits for a worker that has no reason to leave. So each cut waits until every
 * listed worker is connected.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, queueOf } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('F3: the data channel is cut twice under load → workers exit cleanly and are replaced, 0 lost, no stuck lease', async () => {
  const mx = await startFakeMx({ mode: { kind: 'delayDot', ms: 1000 }, tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({
    queue: { retrySchedule: ['1s', '2s', '4s', '8s'], maxQueueTime: '5m' },
    zones: { default: { processes: 2, connections: 10, connectionsPerDomain: 20, route: mx.route } },
  });
  cleanup.push(() => m.stop());
  const supervisor = m.master.supervisor!;
  await waitFor(() => supervisor.pids().length === 2, 5000, 'workers up');
  const smtp = submitter(m.smtpPort, 10);
  cleanup.push(async () => smtp.close());

  const N = 60;
  const started = Date.now();
  const sending = Promise.all(Array.from({ length: N }, (_, i) => smtp.send({ to: `r${i}@dest.test`, testId: `f3-${i}` })));
  let inFlight = 0;
  const cut: number[] = [];
  for (let round = 0; round < 2; round++) {
    await mx.waitUntil(() => mx.transactions.filter((t) => t.outcome === 'open' && t.dataEndAt !== undefined).length >= 3, 15_000, () => 'nothing in flight');
    await waitFor(() => supervisor.pids().every((p) => m.master.channel!.connected().includes(p.workerId)), 15_000, 'every worker connected');
    const before = supervisor.pids();
    const releasedBefore = m.events('LEASES_RELEASED').length;
    m.master.channel!.dropAll();
    cut.push(Date.now());
    // every worker leaves by itself and a new one takes its slot
    await waitFor(() => before.every((p) => !alive(p.pid)), 5000, 'old workers exited');
    await waitFor(() => supervisor.pids().length === 2 && supervisor.pids().every((p) => !before.some((b) => b.pid === p.pid)), 5000, 'replacements up');
    await waitFor(() => m.events('LEASES_RELEASED').length >= releasedBefore + 1, 2000, 'leases released');
    for (const e of m.events('LEASES_RELEASED').slice(releasedBefore)) inFlight += Number(e.leases);
    if (round === 0) await new Promise((r) => setTimeout(r, 1500));
  }
  await sending;

  await mx.waitUntil(() => {
    const c = mx.copiesById();
    for (let i = 0; i < N; i++) if (!c.get(`f3-${i}`)) return false;
    return true;
  }, 30_000, () => `not all delivered: ${mx.copiesById().size}/${N}`);
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0 && m.master.scheduler!.leasedCount === 0;
  }, 10_000, 'queue empty, no lease');

  const copies = mx.copiesById();
  let duplicates = 0;
  for (let i = 0; i < N; i++) duplicates += (copies.get(`f3-${i}`) ?? 0) - 1;
  const exits = m.events('WORKER_EXITED');
  console.log(`# F3 ${N} messages, 2 cuts: lost 0, duplicates ${duplicates} (in flight at the cuts ${inFlight}), ${exits.length} worker exits (codes ${exits.map((e) => e.code).join(',')}), all delivered ${Date.now() - started} ms`);
  assert.ok(duplicates <= inFlight, `duplicates ${duplicates} ≤ in flight ${inFlight}`);
  assert.equal(exits.length, 4, 'each cut ends both workers');
  assert.ok(exits.every((e) => e.code === 0 && e.signal === null), 'they left on their own (exit 0), not by a crash or a kill');
  assert.equal(m.master.scheduler!.leasedCount, 0);
});
