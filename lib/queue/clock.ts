/**
 * Time for the scheduler's parts: the current time and one-shot timers, injected so that each
 * part is tested with a clock the test moves (test/helpers/manual-clock.ts).
 */
export interface Clock {
  now(): number;
  /** runs `fn` once, `ms` from now; the timer does not keep the process alive. Returns a cancel. */
  after(ms: number, fn: () => void): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after(ms, fn) {
    const timer = setTimeout(fn, ms);
    timer.unref();
    return () => clearTimeout(timer);
  },
};
