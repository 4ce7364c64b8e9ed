/**
 * Idle SMTP sessions kept for the next message to the same host (same address, port, local
 * address, HELO name and TLS policy). Bounded: a few idle sessions per key, each closed exactly
 * sessionIdle after its last message, each for a limited number of messages; and throttled per
 * session when the zone says so ("100 messages/minute" per connection).
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
  /** each idle session closes at its own deadline: the master counts it as a connection to its
   * domain until sessionIdle (+ a margin) after the message, so it must not outlive that */
  private readonly timers = new Map<SmtpSession, NodeJS.Timeout>();

  constructor(private readonly opts: PoolOptions) {}

  /** An idle session for these options that may send now, if there is one. */
  take(o: SessionOptions, nowMs = Date.now()): SmtpSession | undefined {
    const list = this.idle.get(sessionKey(o));
    if (!list) return undefined;
    for (let i = list.length - 1; i >= 0; i--) {
      const s = list[i]!;
      if (s.dead) {
        this.forget(s);
        continue;
      }
      if (s.notBeforeMs > nowMs) continue;
      this.forget(s);
      return s;
    }
    return undefined;
  }

  /** Returns a session after a clean transaction; it is closed instead when it is used up.
   * True when the session was kept for the next message. */
  give(s: SmtpSession, nowMs = Date.now()): boolean {
    if (s.dead || s.messages >= this.opts.maxMessagesPerSession || this.opts.idleMs <= 0) {
      s.quit();
      return false;
    }
    s.lastUsedMs = nowMs;
    s.notBeforeMs = nowMs + this.opts.minGapMs;
    const list = this.idle.get(s.key) ?? [];
    if (list.length >= this.opts.maxIdlePerKey) {
      s.quit();
      return false;
    }
    list.push(s);
    this.idle.set(s.key, list);
    const timer = setTimeout(() => {
      this.forget(s);
      s.quit();
    }, this.opts.idleMs);
    timer.unref();
    this.timers.set(s, timer);
    return true;
  }

  closeAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const list of this.idle.values()) for (const s of list) s.quit();
    this.idle.clear();
  }

  /** Takes `s` out of the idle lists and stops its timer. */
  private forget(s: SmtpSession): void {
    clearTimeout(this.timers.get(s));
    this.timers.delete(s);
    const list = this.idle.get(s.key);
    if (!list) return;
    const i = list.indexOf(s);
    if (i >= 0) list.splice(i, 1);
    if (!list.length) this.idle.delete(s.key);
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
