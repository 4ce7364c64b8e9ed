/**
 * Inbox message ids: 16 hex digits that sort by arrival (12 of milliseconds, 4 of a counter),
 * then 22 characters of base64url holding 128 random bits:
 *
 *   0192f3a4b5c60003Xk2V9d0qL1a8nRmZb7c4Qw
 *
 * The prefix orders messages, so a listing pages without gaps or duplicates and "newer than"
 * means "arrived later"; it never goes back, even when the wall clock does (it continues from the
 * newest id the store holds). The random part makes an id impossible to guess: reading a message
 * needs its id, and knowing one id tells nothing about the next.
 */
import { randomBytes } from 'node:crypto';

const ID = /^[0-9a-f]{16}[A-Za-z0-9_-]{22}$/;
/** Random bytes drawn from the system at once: a call for 16 bytes per message cost more than the id's other work together. */
const POOL_BYTES = 4096;
const RANDOM_BYTES = 16;

export class InboxIds {
  private lastMs = 0;
  private counter = 0;
  private pool = Buffer.alloc(0);
  private used = 0;

  /** `newest`: the newest id already stored, so that new ids sort after it. */
  constructor(newest?: string) {
    if (newest && isInboxId(newest)) {
      this.lastMs = parseInt(newest.slice(0, 12), 16);
      this.counter = parseInt(newest.slice(12, 16), 16);
    }
  }

  next(nowMs = Date.now()): string {
    if (nowMs > this.lastMs) {
      this.lastMs = nowMs;
      this.counter = 0;
    } else if (++this.counter > 0xffff) {
      // more than 65,536 in one millisecond, or the clock stepped back: borrow from the future
      this.lastMs++;
      this.counter = 0;
    }
    return this.lastMs.toString(16).padStart(12, '0') + this.counter.toString(16).padStart(4, '0') + this.random().toString('base64url');
  }

  /** 16 fresh random bytes; each byte of the pool is handed out once. */
  private random(): Buffer {
    if (this.used + RANDOM_BYTES > this.pool.length) {
      this.pool = randomBytes(POOL_BYTES);
      this.used = 0;
    }
    return this.pool.subarray(this.used, (this.used += RANDOM_BYTES));
  }
}

export function isInboxId(value: string): boolean {
  return ID.test(value);
}

/** When the message with this id arrived (ms). */
export function inboxIdTime(id: string): number {
  return parseInt(id.slice(0, 12), 16);
}

/** The smallest id prefix of messages that arrived at or after `ms`. */
export function idPrefixAt(ms: number): string {
  return Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0');
}
