/**
 * The F6 scenario, shared by the fast file (refused, blackhole) and the slow
 * one (silent server, stall after the dot): for each unreachable destination, N messages; a
 * healthy control domain keeps delivering meanwhile; after maxQueueTime each message bounces
 * with exactly one "delivery time expired" DSN and the queue is empty.
 *
 * Attempt durations come from the master's log: `durationMs` of each DEFERRED/BOUNCED event is
 * the attempt as the worker timed it (the pass criterion); from falling due (the `next` of the
 * previous event, or QUEUED) to the logged result adds scheduling and the synced commit, which
 * is held to a looser bound (a scheduler that sits on due work would show there).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { nextAttemptAt } from '../../lib/queue/backoff.js';
import { isExpired } from '../../lib/deliver/failure-policy.js';
import type { FakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, queueOf, type LogLine } from '../helpers/delivery-kit.js';

export interface Variant {
  name: string;
  domain: string;
  route: { host: string; port: number };
  /** the configured timeout this variant runs into, ms (0: fails at once) */
  timeoutMs: number;
  /** pass bound for one attempt, ms */
  maxAttemptMs: number;
  /** the enhanced status each deferral must carry, when the variant has a telling one */
  deferredStatus?: string;
}

export const F6_TIMING = {
  queue: { retrySchedule: ['1s', '2s', '4s', '8s'], maxQueueTime: '20s' },
  delivery: { connectTimeout: '2s', greetingTimeout: '2s', socketTimeout: '5s', unreachableHold: '0s' },
};
const SCHEDULE_MS = [1000, 2000, 4000, 8000];
const MAX_QUEUE_MS = 20_000;

/** Attempts our policy allows a message that fails at once: every retry step (the last one
 * repeating) until maxQueueTime, plus the last try at the end of the lifetime. */
export function maxAttemptsByPolicy(): number {
  let now = 0;
  let attempts = 0;
  for (;;) {
    attempts++;
    if (isExpired(now, 0, MAX_QUEUE_MS)) return attempts;
    now = nextAttemptAt(now, attempts, 0, SCHEDULE_MS, MAX_QUEUE_MS);
  }
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

const at = (l: LogLine) => Date.parse(l.time);

export async function runF6(capture: FakeMx, variants: Variant[], perVariant: number, cleanup: (() => Promise<void>)[], report: (line: string) => void): Promise<void> {
  const routes: Record<string, { host: string; port: number }> = { 'ok.test': capture.route, 'src.test': capture.route };
  for (const v of variants) routes[v.domain] = v.route;
  const m = await startLoggedMaster({ ...F6_TIMING, routes, zones: { default: { processes: 1, connections: 40, connectionsPerDomain: perVariant } } });
  cleanup.push(() => m.stop());
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());
  const workerPid = m.master.supervisor!.pids()[0]!.pid;
  const rssStart = rssKb(workerPid);

  const ids = new Map<string, string>();
  for (const v of variants) {
    for (let i = 0; i < perVariant; i++) ids.set(await smtp.send({ to: `u${i}@${v.domain}`, testId: `${v.name}-${i}` }), v.name);
  }
  const startedAt = Date.now();

  // no head-of-line blocking: while every message above keeps failing, control mail gets through
  await waitFor(() => variants.every((v) => m.events('DEFERRED').some((e) => String(e.recipient).endsWith(v.domain))), 10_000, 'every variant failed once');
  for (let round = 0; round < 2; round++) {
    const sentAt = Date.now();
    const testIds = Array.from({ length: 5 }, (_, i) => `control-${round}-${i}`);
    await Promise.all(testIds.map((testId, i) => smtp.send({ to: `c${i}@ok.test`, testId })));
    await capture.waitUntil(() => testIds.every((t) => capture.copiesById().get(t) === 1), 2000 + 1000, () => `control round ${round}: not all delivered within 2 s (+1 s submission)`);
    report(`control round ${round}: 5/5 delivered in ${Date.now() - sentAt} ms during the outage`);
    await new Promise((r) => setTimeout(r, 4000));
  }

  // at maxQueueTime + ≤ 10 s: one DSN per message, and the queue is empty
  await waitFor(() => m.events('BOUNCED').length >= ids.size, MAX_QUEUE_MS + 10_000 - (Date.now() - startedAt) + 2000, 'every message bounced');
  const dsnFor = (recipient: string) => capture.transactions.filter((t) => t.from === '' && t.outcome === 'accepted' && new RegExp(`^Final-Recipient: rfc822; ?${recipient.replace(/\./g, '\\.')}\\r?$`, 'im').test(t.data?.toString('utf8') ?? ''));
  await waitFor(() => [...ids.values()].every(() => true) && variants.every((v) => Array.from({ length: perVariant }, (_, i) => dsnFor(`u${i}@${v.domain}`).length).every((n) => n >= 1)), 10_000, 'every DSN delivered');
  await waitFor(async () => {
    const q = await queueOf(m.api);
    return q.queued + q.deferred === 0;
  }, 5000, 'queue empty');
  const rssEnd = rssKb(workerPid);

  const bound = maxAttemptsByPolicy();
  for (const v of variants) {
    let longest = 0;
    let longestTotal = 0;
    let mostAttempts = 0;
    for (const [id, name] of ids) {
      if (name !== v.name) continue;
      const queued = m.events('QUEUED').find((e) => e.id === id)!;
      const tries = m.logs.filter((l) => l.id === id && (l.event === 'DEFERRED' || l.event === 'BOUNCED'));
      assert.equal(tries.filter((t) => t.event === 'BOUNCED').length, 1, `${v.name} ${id}: bounced once`);
      const bounce = tries[tries.length - 1]!;
      assert.equal(bounce.event, 'BOUNCED');
      assert.match(String(bounce.response), /expired/i, `${v.name}: bounced because its time ran out`);
      let start = at(queued);
      for (const t of tries) {
        if (v.deferredStatus && t.event === 'DEFERRED') assert.equal(t.status, v.deferredStatus, `${v.name}: ${String(t.response)}`);
        // the attempt itself, timed by the worker
        const ms = Number(t.durationMs);
        assert.ok(Number.isFinite(ms), `${v.name}: the attempt's duration is logged`);
        longest = Math.max(longest, ms);
        assert.ok(ms <= v.maxAttemptMs, `${v.name} ${id}: an attempt took ${ms} ms (bound ${v.maxAttemptMs} ms)`);
        if (v.timeoutMs) assert.ok(ms <= 2 * v.timeoutMs, `${v.name}: no attempt runs over twice its timeout`);
        // from falling due to the recorded result: scheduling, the attempt, the synced commit
        const total = at(t) - start;
        longestTotal = Math.max(longestTotal, total);
        assert.ok(total <= v.maxAttemptMs + 2000, `${v.name} ${id}: due → recorded took ${total} ms: ${JSON.stringify([queued.time, ...tries.map((x) => [x.time, x.next, x.durationMs])])}`);
        if (t.next) start = Date.parse(String(t.next));
      }
      mostAttempts = Math.max(mostAttempts, tries.length);
      assert.ok(tries.length <= bound, `${v.name} ${id}: ${tries.length} attempts, policy bound ${bound}`);
      assert.ok(at(bounce) - at(queued) <= MAX_QUEUE_MS + 10_000, `${v.name}: bounced ${at(bounce) - at(queued)} ms after queueing`);
    }
    for (let i = 0; i < perVariant; i++) {
      const dsns = dsnFor(`u${i}@${v.domain}`);
      assert.equal(dsns.length, 1, `${v.name} u${i}: exactly one DSN`);
      const text = dsns[0]!.data!.toString('utf8');
      assert.match(text, /^Action: failed/im);
      assert.match(text, /^Status: (4\.4\.\d|5\.4\.7)/im);
      assert.match(text.replace(/\r\n[ \t]+/g, ' '), /expired/i);
      assert.deepEqual(dsns[0]!.to, ['sender@src.test']);
    }
    report(`${v.name}: ${perVariant} messages, longest attempt ${longest} ms (bound ${v.maxAttemptMs}; due → recorded ≤ ${longestTotal} ms), at most ${mostAttempts} attempts (policy bound ${bound}), one DSN each`);
  }
  const growthMb = (rssEnd - rssStart) / 1024;
  report(`worker RSS ${Math.round(rssStart / 1024)} → ${Math.round(rssEnd / 1024)} MB`);
  assert.ok(growthMb <= 20, `worker RSS grew ${growthMb.toFixed(1)} MB`);
}
