/**
 * Queue ids: time-sortable and unique without coordination. 12 hex digits of milliseconds, 4 of
 * a counter, 6 random per generator: `018c2f9a6b3e0001a4f3c9`. Ids sort by creation time, which
 * the garbage collector and listings use.
 *
 * Invariants:
 * - The ids one generator issues strictly increase, whatever the wall clock does. Its time never
 *   goes back: a clock that steps back (an NTP step, a VM resumed from a snapshot) keeps the last
 *   millisecond and the counter goes on; a counter that runs out moves to the next millisecond.
 * - A generator started with a `floor` (the highest id in the queue when it opens) issues only
 *   ids above it, so a restarted master with a clock that went back never issues the id of a
 *   message still queued. Ids of messages that have left the queue could only come again from
 *   another process whose clock stepped back past them and whose random suffix is the same.
 */
import { randomBytes } from 'node:crypto';

const MAX_COUNTER = 0xffff;

export class QueueIds {
  private lastMs = 0;
  private counter = -1;
  private readonly suffix = randomBytes(3).toString('hex');

  constructor(floor?: string) {
    if (floor && isQueueId(floor)) {
      this.lastMs = queueIdTime(floor);
      this.counter = parseInt(floor.slice(12, 16), 16);
    }
  }

  next(nowMs = Date.now()): string {
    if (nowMs > this.lastMs) {
      this.lastMs = nowMs;
      this.counter = 0;
    } else if (++this.counter > MAX_COUNTER) {
      this.lastMs++;
      this.counter = 0;
    }
    return this.lastMs.toString(16).padStart(12, '0') + this.counter.toString(16).padStart(4, '0') + this.suffix;
  }
}

export function isQueueId(value: string): boolean {
  return /^[0-9a-f]{22}$/.test(value);
}

/** The first 12 characters of every id created at `ms` (ids of later times sort after it). */
export function idTimePrefix(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
}

/** The creation time encoded in an id. */
export function queueIdTime(id: string): number {
  return parseInt(id.slice(0, 12), 16);
}
