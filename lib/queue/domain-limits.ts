/**
 * Per-zone, per-destination-domain limits, kept by the master so they hold across every process
 * of a zone: connections at once (connectionsPerDomain) and messages per minute
 * (domainRatePerMinute, a sliding one-minute window). ZoneMTA counts these per process; here a
 * zone with 4 processes and a limit of 60/min sends 60/min, not 240.
 *
 * A connection to a domain is either busy (a lease: a delivery in flight) or idle (a *hold*: a
 * worker kept the session open for its next message to that host, until sessionIdle runs out).
 * Both count against connectionsPerDomain: an idle pooled session in one process plus a new one
 * in another would otherwise be two connections under a limit of one. A hold is the right of its
 * worker to the next delivery to that domain on that session; when that worker takes it, the hold
 * turns back into a busy connection (`useHold`). Holds end when they expire, or when their worker
 * leaves.
 *
 * Memory is proportional to the domains with work: a domain has an entry only while it has a
 * connection, an idle session or a start within the last minute; expired entries go when the
 * domain is next looked at, and at the latest at the zone's next timer (nextFreeAt sweeps them).
 */
import type { Config } from '../config/schema.js';

const WINDOW_MS = 60_000;

export class DomainLimits {
  private readonly active = new Map<string, number>();
  /** start times within the last minute, per zone+domain, oldest first */
  private readonly starts = new Map<string, number[]>();
  /** idle sessions kept, per zone+domain, per owner: their expiry times */
  private readonly holds = new Map<string, Map<string, number[]>>();

  constructor(
    /** read per use: a reload may replace it (reconfigure) */
    private config: Config,
    private readonly now: () => number,
  ) {}

  /** Limits from a reloaded config apply to the next decision; counts so far are kept. */
  reconfigure(config: Config): void {
    this.config = config;
  }

  mayStart(zone: string, domain: string): boolean {
    const z = this.config.zones[zone];
    if (!z) return false;
    const key = `${zone}\0${domain}`;
    if ((this.active.get(key) ?? 0) + this.heldCount(key) >= z.connectionsPerDomain) return false;
    return this.rateAllows(zone, key);
  }

  /** A new connection starts (a lease). */
  acquire(zone: string, domain: string): void {
    const key = `${zone}\0${domain}`;
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    this.countStart(zone, key);
  }

  release(zone: string, domain: string): void {
    const key = `${zone}\0${domain}`;
    const n = (this.active.get(key) ?? 1) - 1;
    if (n > 0) this.active.set(key, n);
    else this.active.delete(key);
  }

  /**
   * A connection that was counted (acquire, useHold) but never started: the job fell through
   * (its rows were leased meanwhile by the other path, or deleted; its worker left). It gives back
   * the connection and its place in the rate window; counted, it would have let one message less
   * through that minute.
   */
  unclaim(zone: string, domain: string): void {
    this.release(zone, domain);
    const key = `${zone}\0${domain}`;
    const list = this.starts.get(key);
    if (list?.length) list.pop();
  }

  /** `owner` kept a session to `domain` idle until `untilMs`. */
  hold(zone: string, domain: string, owner: string, untilMs: number): void {
    const key = `${zone}\0${domain}`;
    let byOwner = this.holds.get(key);
    if (!byOwner) this.holds.set(key, (byOwner = new Map()));
    const list = byOwner.get(owner) ?? [];
    list.push(untilMs);
    list.sort((a, b) => a - b);
    byOwner.set(owner, list);
  }

  /** Does `owner` hold an idle session to `domain` now? */
  hasHold(zone: string, domain: string, owner: string): boolean {
    const key = `${zone}\0${domain}`;
    this.prune(key);
    return (this.holds.get(key)?.get(owner)?.length ?? 0) > 0;
  }

  /** `owner` takes the next delivery to `domain` on its idle session: the hold becomes busy.
   * False when the message rate does not allow a start now. */
  useHold(zone: string, domain: string, owner: string): boolean {
    const key = `${zone}\0${domain}`;
    if (!this.hasHold(zone, domain, owner) || !this.rateAllows(zone, key)) return false;
    const byOwner = this.holds.get(key)!;
    const list = byOwner.get(owner)!;
    list.pop(); // the one that would live longest: the session just used is the one kept
    if (!list.length) byOwner.delete(owner);
    if (!byOwner.size) this.holds.delete(key);
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    this.countStart(zone, key);
    return true;
  }

  /**
   * A waiter for a new delivery to `domain`, taken out of `free`, with the connection counted: the
   * worker that keeps an idle session to that domain, when the rate allows (no new connection);
   * else the first waiter, when the domain's limits allow one more connection; else none.
   */
  claim<W extends { owner: string }>(zone: string, domain: string, free: W[]): W | undefined {
    const i = free.findIndex((w) => this.hasHold(zone, domain, w.owner));
    if (i >= 0 && this.useHold(zone, domain, free[i]!.owner)) return free.splice(i, 1)[0];
    if (!this.mayStart(zone, domain)) return undefined;
    this.acquire(zone, domain);
    return free.shift();
  }

  /** A worker left: its idle sessions are gone with it. */
  dropHolds(owner: string): void {
    for (const [key, byOwner] of this.holds) {
      byOwner.delete(owner);
      if (!byOwner.size) this.holds.delete(key);
    }
  }

  activeFor(zone: string, domain: string): number {
    const key = `${zone}\0${domain}`;
    return (this.active.get(key) ?? 0) + this.heldCount(key);
  }

  /** When the earliest limit of the zone may ease (a rate window moves, a hold expires), if any.
   * Drops what expired on the way, so a domain without work keeps no entry. */
  nextFreeAt(zone: string): number | undefined {
    let at: number | undefined;
    const consider = (t: number) => (at = at === undefined ? t : Math.min(at, t));
    const prefix = `${zone}\0`;
    for (const key of [...this.starts.keys()]) {
      if (!key.startsWith(prefix)) continue;
      const list = this.recent(key);
      if (list.length) consider(list[0]! + WINDOW_MS);
    }
    for (const key of [...this.holds.keys()]) {
      if (!key.startsWith(prefix)) continue;
      this.prune(key);
      for (const list of this.holds.get(key)?.values() ?? []) if (list.length) consider(list[0]!);
    }
    return at;
  }

  /** Zone+domain entries held now (connections, rate windows, idle sessions): for tests. */
  get entries(): number {
    return new Set([...this.active.keys(), ...this.starts.keys(), ...this.holds.keys()]).size;
  }

  private rateAllows(zone: string, key: string): boolean {
    const rate = this.config.zones[zone]?.domainRatePerMinute ?? 0;
    return rate <= 0 || this.recent(key).length < rate;
  }

  private countStart(zone: string, key: string): void {
    if ((this.config.zones[zone]?.domainRatePerMinute ?? 0) > 0) {
      const list = this.recent(key);
      list.push(this.now());
      this.starts.set(key, list);
    }
  }

  private heldCount(key: string): number {
    this.prune(key);
    let n = 0;
    for (const list of this.holds.get(key)?.values() ?? []) n += list.length;
    return n;
  }

  private prune(key: string): void {
    const byOwner = this.holds.get(key);
    if (!byOwner) return;
    const now = this.now();
    for (const [owner, list] of byOwner) {
      while (list.length && list[0]! <= now) list.shift();
      if (!list.length) byOwner.delete(owner);
    }
    if (!byOwner.size) this.holds.delete(key);
  }

  private recent(key: string): number[] {
    const cutoff = this.now() - WINDOW_MS;
    const list = this.starts.get(key) ?? [];
    while (list.length && list[0]! <= cutoff) list.shift();
    if (!list.length) this.starts.delete(key);
    return list;
  }
}
