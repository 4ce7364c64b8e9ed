/**
 * One F1 trial: `sluice run` as a child, the submitter sending N messages at
 * concurrency C, SIGKILL of the master at a seeded random moment, a restart on the same app dir,
 * the submitter left to finish (it retries what failed), a clean stop, then the queue opened in
 * this process and every acknowledged message checked whole.
 *
 * The moment of the kill is measured in progress rather than wall time — when the number of 250s
 * reaches a seeded fraction in [10 %, 80 %] of N — so a slow or loaded machine still kills in the
 * middle of the run, with connections at every stage of their transaction.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { budgetMs } from '../helpers/budget.js';
import { makeAppDir } from '../helpers/app-dir.js';
import { isError, startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { seededRandom } from '../helpers/seeded.js';
import { countOutcomes, submit, type Attempt, type Target } from '../helpers/submit.js';
import { verifyQueue } from '../helpers/verify-queue.js';

export interface TrialOptions {
  count: number;
  concurrency: number;
  seed: number;
  bodyBytes?: number;
}

export interface TrialResult {
  seed: number;
  count: number;
  acked: number;
  /** messages whose last attempt was not a 250 */
  notAcked: number;
  /** 250 replies without a queue id (must be 0) */
  ackedWithoutId: number;
  lost: number;
  problems: string[];
  duplicates: number;
  stored: number;
  killAtAcks: number;
  killAtMs: number;
  /** restart: spawn → STARTED, and spawn → first 250 */
  restartMs: number;
  firstAckAfterRestartMs: number;
  /** error-level log lines of the restarted master before STARTED (must be none) */
  startErrors: string[];
  /** the restarted master's exit on SIGTERM */
  stopExit: { code: number | null; signal: string | null };
  outcomes: Record<string, number>;
  elapsedMs: number;
}

const RCPTS = ['r1@dest.test', 'r2@dest.test'];

export async function killMasterTrial(opts: TrialOptions): Promise<TrialResult> {
  const appDir = makeAppDir({}, 'sluice-f1-');
  const queuePath = path.join(appDir, 'data', 'queue');
  const rand = seededRandom(opts.seed);
  const killAtAcks = Math.max(1, Math.round(opts.count * (0.1 + 0.7 * rand())));
  const children: SluiceChild[] = [];
  try {
    const first = await startSluice(appDir);
    children.push(first);
    const target: Target = { host: '127.0.0.1', port: first.smtpPort };
    const t0 = Date.now();
    let acks = 0;
    let killAtMs = 0;
    let restartSpawnedAt = 0;
    let firstAckAfterRestart = 0;
    let restarted: Promise<SluiceChild> | undefined;

    const onAttempt = (a: Attempt) => {
      if (a.outcome !== '250') return;
      acks++;
      if (restartSpawnedAt && !firstAckAfterRestart && a.startMs >= restartSpawnedAt) firstAckAfterRestart = a.endMs;
      if (!restarted && acks >= killAtAcks) {
        killAtMs = Date.now() - t0;
        first.kill('SIGKILL');
        restarted = first.exited.then(async () => {
          restartSpawnedAt = Date.now();
          const second = await startSluice(appDir);
          children.push(second);
          target.port = second.smtpPort;
          return second;
        });
      }
    };

    const result = await submit({ target: () => target, runId: `f1s${opts.seed}`, count: opts.count, concurrency: opts.concurrency, recipients: RCPTS, bodyBytes: opts.bodyBytes ?? 1500, onAttempt });
    if (!restarted) throw new Error(`the kill never happened (${acks} acks, kill planned at ${killAtAcks})`);
    const second = await restarted;
    const startedAt = second.lines.findIndex((l) => l.event === 'STARTED');
    const startErrors = second.lines.slice(0, startedAt).filter(isError).map((l) => String(l.msg));
    const stopExit = await second.stop();
    const report = await verifyQueue(queuePath, result.acked, RCPTS.length);

    return {
      seed: opts.seed,
      count: opts.count,
      acked: result.acked.size,
      notAcked: result.final.filter((a) => a.outcome !== '250').length,
      ackedWithoutId: result.attempts.filter((a) => a.outcome === '250' && !a.queueId).length,
      lost: report.lost.length,
      problems: report.problems.slice(0, 10),
      duplicates: report.duplicates,
      stored: report.stored,
      killAtAcks,
      killAtMs,
      restartMs: second.startMs,
      firstAckAfterRestartMs: firstAckAfterRestart ? firstAckAfterRestart - restartSpawnedAt : -1,
      startErrors,
      stopExit,
      outcomes: countOutcomes(result.attempts),
      elapsedMs: result.elapsedMs,
    };
  } finally {
    for (const c of children) {
      c.kill('SIGKILL');
      await c.exited;
    }
    rmSync(appDir, { recursive: true, force: true });
  }
}

/** The pass criteria of F1. */
export function assertTrial(r: TrialResult, concurrency: number): void {
  const summary = JSON.stringify({ ...r, problems: undefined });
  assert.equal(r.lost, 0, `LOST ${r.lost} (seed ${r.seed}): ${r.problems.join('; ')}\n${summary}`);
  assert.equal(r.ackedWithoutId, 0, `250 without a queue id: ${summary}`);
  assert.equal(r.notAcked, 0, `messages that never got 250 despite retries: ${summary}`);
  assert.equal(r.acked, r.count, summary);
  // duplicates come only from transactions in flight at the kill: at most one per connection
  assert.ok(r.duplicates <= concurrency, `duplicates ${r.duplicates} > ${concurrency}: ${summary}`);
  assert.deepEqual(r.startErrors, [], `the restarted queue logged errors at start: ${summary}`);
  // the plan: accepting again within 5 s of the restart (stretched on an overloaded machine)
  const limitMs = budgetMs(5000);
  assert.ok(r.restartMs <= limitMs, `restart took ${r.restartMs} ms (budget ${limitMs}): ${summary}`);
  assert.ok(r.firstAckAfterRestartMs >= 0 && r.firstAckAfterRestartMs <= limitMs, `first 250 after restart at ${r.firstAckAfterRestartMs} ms (budget ${limitMs}): ${summary}`);
  assert.deepEqual(r.stopExit, { code: 0, signal: null }, summary);
}
