/**
 * A clock a test moves by hand (lib/queue/clock.ts): timers run, in order, only when `advance`
 * passes their time.
 */
import type { Clock } from '../../lib/queue/clock.js';

export class ManualClock implements Clock {
  private timers: { at: number; fn: () => void; live: boolean }[] = [];

  constructor(private time = 1_000_000) {}

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + ms, fn, live: true };
    this.timers.push(timer);
    return () => {
      timer.live = false;
    };
  }

  /** Moves the time forward by `ms`, running every timer that comes due on the way. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.time = due.at;
      due.fn();
    }
    this.timers = this.timers.filter((t) => t.live);
    this.time = end;
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.timers.filter((t) => t.live).length;
  }
}
