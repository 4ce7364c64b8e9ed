/**
 * When to try again: a pure function of the attempt count and the configured schedule. The last
 * step repeats; the queue lifetime ends it (the failure policy, lib/deliver/failure-policy.ts).
 */
export function retryDelayMs(attempts: number, scheduleMs: readonly number[]): number {
  if (!scheduleMs.length) return 5 * 60_000;
  const i = Math.min(Math.max(attempts, 1), scheduleMs.length) - 1;
  return scheduleMs[i]!;
}

/** The next attempt time for a delivery that failed for the `attempts`-th time, capped so the
 * last try happens at the end of its lifetime rather than after it. */
export function nextAttemptAt(nowMs: number, attempts: number, createdMs: number, scheduleMs: readonly number[], maxQueueTimeMs: number): number {
  return Math.min(nowMs + retryDelayMs(attempts, scheduleMs), Math.max(nowMs, createdMs + maxQueueTimeMs));
}
