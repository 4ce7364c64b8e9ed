/**
 * Idle SMTP sessions kept for the next message to the same host (same address, port, local
 * address, HELO name and TLS policy). Bounded: a few idle sessions per key, each for a few
 * seconds, each for a limited number of messages; and throttled per session when the zone says
 * so ("100 messages/minute" per connection).
 */
import { SmtpSession, sessionKey, type SessionOptions } from './smtp-client.js';

export interface PoolOptions {
  idleMs: number;
  maxIdlePerKey: number;
  maxMessagesPerSession: number;
  /** minimum gap between two messages on one session (from zone throttling); 0 = none */
  minGapMs: number;
}

export class SessionPool {
  private readonly idle = new Map<string, SmtpSession[]>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: PoolOptions) {
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.min(opts.idleMs, 5000)));
    this.timer.unref();
  }

  /** An idle session for these options that may send now, if there is one. */
  take(o: SessionOptions, nowMs = Date.now()): SmtpSession | undefined {
    const list = this.idle.get(sessionKey(o));
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.dead) {
        list.splice(i, 1);
        continue;
      }
      if (s.notBeforeMs > nowMs) continue;
      list.splice(i, 1);
      return s;
    }
    return undefined;
  }

  /** Returns a session after a clean transaction; it is closed instead when it is used up. */
  give(s: SmtpSession, nowMs = Date.now()): void {
    if (s.dead || s.messages >= this.opts.maxMessagesPerSession || this.opts.idleMs <= 0) return s.quit();
    s.lastUsedMs = nowMs;
    s.notBeforeMs = nowMs + this.opts.minGapMs;
    const list = this.idle.get(s.key) ?? [];
    if (list.length >= this.opts.maxIdlePerKey) return s.quit();
    list.push(s);
    this.idle.set(s.key, list);
  }

  closeAll(): void {
    clearInterval(this.timer);
    for (const list of this.idle.values()) for (const s of list) s.quit();
    this.idle.clear();
  }

  private sweep(nowMs = Date.now()): void {
    for (const [key, list] of this.idle) {
      const keep = list.filter((s) => {
        if (s.dead) return false;
        if (nowMs - s.lastUsedMs > this.opts.idleMs) {
          s.quit();
          return false;
        }
        return true;
      });
      if (keep.length) this.idle.set(key, keep);
      else this.idle.delete(key);
    }
  }
}

/** "100 messages/minute" → the minimum gap between messages in ms; '' → 0. */
export function throttleGapMs(throttling: string): number {
  const m = /^(\d+)\s*(?:messages?\s*)?\/\s*(s|sec|second|m|min|minute|h|hour)$/i.exec(throttling.trim());
  if (!m) return 0;
  const count = Number(m[1]);
  if (!count) return 0;
  const unit = m[2]!.toLowerCase();
  const periodMs = unit.startsWith('s') ? 1000 : unit.startsWith('m') ? 60_000 : 3_600_000;
  return Math.ceil(periodMs / count);
}
