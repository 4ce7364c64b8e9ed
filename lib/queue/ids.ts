/**
 * Queue ids: time-sortable and unique without coordination. 12 hex digits of milliseconds, 4 of
 * a per-process counter, 6 random: `018c2f9a6b3e0001a4f3c9`. Ids sort by creation time, which
 * the garbage collector and listings use.
 */
import { randomBytes } from 'node:crypto';

let lastMs = 0;
let counter = 0;
const suffix = randomBytes(3).toString('hex');

export function newQueueId(nowMs = Date.now()): string {
  if (nowMs === lastMs) {
    counter = (counter + 1) & 0xffff;
  } else {
    lastMs = nowMs;
    counter = 0;
  }
  return nowMs.toString(16).padStart(12, '0') + counter.toString(16).padStart(4, '0') + suffix;
}

export function isQueueId(value: string): boolean {
  return /^[0-9a-f]{22}$/.test(value);
}

/** The creation time encoded in an id. */
export function queueIdTime(id: string): number {
  return parseInt(id.slice(0, 12), 16);
}
