/**
 * The F2 scenario, shared by the fast file (100 messages, 2 kills) and the
 * slow one (500 messages, 5 kills): a fakemx that holds its reply to the final dot for 1.5 s, so
 * a kill lands while deliveries are mid-transfer; `kills` times, 1–3 s apart, SIGKILL one live
 * worker (chosen at random, by its PID).
 *
 * Pass: every message delivered at least once; duplicate copies ≤ the deliveries the killed
 * workers held (each kill's LEASES_RELEASED count, ≤ `connections`); a replacement forked ≤ 2 s
 * after each kill; the released messages delivered again ≤ 5 s after their kill (released on
 * the channel closing, not by the lease timeout); no lease left afterwards.
 */
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, queueOf } from '../helpers/delivery-kit.js';

export interface F2Options {
  messages: number;
  kills: number;
  processes: number;
  connections: number;
  delayDotMs: number;
}

export interface KillRecord {
  at: number;
  pid: number;
  workerId: string;
  released: number;
  replacedMs: number;
}

export async function runF2(o: F2Options, cleanup: (() => Promise<void>)[], report: (line: string) => void): Promise<void> {
  const mx = await startFakeMx({ mode: { kind: 'delayDot', ms: o.delayDotMs }, tls: false });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({
    queue: { retrySchedule: ['1s', '2s', '4s', '8s'], maxQueueTime: '5m' },
    zones: { default: { processes: o.processes, connections: o.connections, connectionsPerDomain: o.processes * o.connections, route: mx.route } },
  });
  cleanup.push(() => m.stop());
  const supervisor = m.master.supervisor!;
  await waitFor(() => supervisor.pids().length === o.processes, 5000, 'workers up');
  const smtp = submitter(m.smtpPort, 10);
  cleanup.push(async () => smtp.close());

  const started = Date.now();
  const sending = Promise.all(Array.from({ length: o.messages }, (_, i) => smtp.send({ to: `r${i}@dest.test`, testId: `f2-${i}` })));
  const kills: KillRecord[] = [];
  for (let k = 0; k < o.kills; k++) {
    // a kill must land while messages wait for their reply after the dot
    await mx.waitUntil(() => mx.transactions.filter((t) => t.outcome === 'open' && t.dataEndAt !== undefined).length >= 3, 20_000, () => 'no delivery in flight to kill into');
    const live = supervisor.pids();
    const victim = live[Math.floor(Math.random() * live.length)]!;
    const slot = victim.workerId.split('.').slice(0, 2).join('.');
    const at = Date.now();
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(() => supervisor.pids().some((p) => p.workerId !== victim.workerId && p.workerId.startsWith(`${slot}.`)), 5000, `a replacement for ${victim.workerId}`);
    const replacedMs = Date.now() - at;
    await waitFor(() => m.events('LEASES_RELEASED').some((e) => e.workerId === victim.workerId) || Date.now() - at > 1000, 2000, 'release logged');
    const released = m.events('LEASES_RELEASED').find((e) => e.workerId === victim.workerId);
    kills.push({ at, pid: victim.pid, workerId: victim.workerId, released: Number(released?.leases ?? 0), replacedMs });
    if (k < o.kills - 1) await new Promise((r) => setTimeout(r, 1000 + Math.random() * 2000));
  }
  const queueIds = await sending;
  const testIdOf = new Map(queueIds.map((id, i) => [id, `f2-${i}`]));

  await mx.waitUntil(() => {
    const c = mx.copiesById();
    for (let i = 0; i < o.messages; i++) if (!c.get(`f2-${i}`)) return false;
    return true;
  }, 60_000 - (Date.now() - started), () => `not all ${o.messages} delivered within 60 s: ${mx.copiesById().size}`);
  const allDeliveredMs = Date.now() - started;
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0 && m.master.scheduler!.leasedCount === 0;
  }, 10_000, 'queue empty and no lease held');

  const copies = mx.copiesById();
  let lost = 0;
  let duplicates = 0;
  for (let i = 0; i < o.messages; i++) {
    const n = copies.get(`f2-${i}`) ?? 0;
    if (n === 0) lost++;
    duplicates += Math.max(0, n - 1);
  }
  const inFlight = kills.reduce((s, k) => s + k.released, 0);
  // released messages delivered again ≤ 5 s after their kill
  let slowest = 0;
  for (const k of kills) {
    const released = m.events('LEASES_RELEASED').find((e) => e.workerId === k.workerId);
    for (const id of (released?.ids as string[] | undefined) ?? []) {
      const testId = testIdOf.get(id);
      if (!testId) continue;
      const again = mx.transactions.find((t) => t.testId === testId && t.outcome === 'accepted' && t.mailAt > k.at);
      const delivered = mx.transactions.find((t) => t.testId === testId && t.outcome === 'accepted');
      const ms = again ? again.dataEndAt! + o.delayDotMs - k.at : delivered ? 0 : Infinity;
      slowest = Math.max(slowest, ms);
    }
  }
  report(`${o.messages} messages, ${o.processes}×${o.connections} slots, ${o.kills} kills: lost ${lost}, duplicates ${duplicates} (in flight at the kills: ${kills.map((k) => k.released).join('+')} = ${inFlight}), replacement ${kills.map((k) => k.replacedMs).join('/')} ms, released ones delivered again ≤ ${slowest} ms after their kill, all delivered in ${allDeliveredMs} ms`);
  assert.equal(lost, 0, 'no message lost');
  assert.ok(duplicates <= inFlight, `duplicates ${duplicates} ≤ deliveries held by the killed workers ${inFlight}`);
  for (const k of kills) {
    assert.ok(k.released <= o.connections, `${k.workerId} held ${k.released} ≤ connections`);
    assert.ok(k.replacedMs <= 2000, `${k.workerId} replaced in ${k.replacedMs} ms`);
  }
  assert.ok(slowest <= 5000, `released messages delivered again within 5 s of their kill (${slowest} ms)`);
  assert.equal(m.master.scheduler!.leasedCount, 0, 'no lease held by a dead worker');
  const killedPids = new Set(kills.map((k) => k.pid));
  for (const pid of killedPids) assert.throws(() => process.kill(pid, 0), 'the killed worker is gone');
  assert.equal(supervisor.pids().length, o.processes, 'every slot has a live worker');
}
