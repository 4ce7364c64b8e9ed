/**
 * Per-zone, per-destination-domain limits, kept by the master so they hold across every process
 * of a zone: connections at once (connectionsPerDomain) and messages per minute
 * (domainRatePerMinute, a sliding one-minute window). ZoneMTA counts these per process; here a
 * zone with 4 processes and a limit of 60/min sends 60/min, not 240.
 */
import type { Config } from '../config/schema.js';

const WINDOW_MS = 60_000;

export class DomainLimits {
  private readonly active = new Map<string, number>();
  /** start times within the last minute, per zone+domain, oldest first */
  private readonly starts = new Map<string, number[]>();

  constructor(
    private readonly config: Config,
    private readonly now: () => number,
  ) {}

  mayStart(zone: string, domain: string): boolean {
    const z = this.config.zones[zone];
    if (!z) return false;
    const key = `${zone}\0${domain}`;
    if ((this.active.get(key) ?? 0) >= z.connectionsPerDomain) return false;
    if (z.domainRatePerMinute > 0 && this.recent(key).length >= z.domainRatePerMinute) return false;
    return true;
  }

  acquire(zone: string, domain: string): void {
    const key = `${zone}\0${domain}`;
    this.active.set(key, (this.active.get(key) ?? 0) + 1);
    if ((this.config.zones[zone]?.domainRatePerMinute ?? 0) > 0) {
      const list = this.recent(key);
      list.push(this.now());
      this.starts.set(key, list);
    }
  }

  release(zone: string, domain: string): void {
    const key = `${zone}\0${domain}`;
    const n = (this.active.get(key) ?? 1) - 1;
    if (n > 0) this.active.set(key, n);
    else this.active.delete(key);
  }

  activeFor(zone: string, domain: string): number {
    return this.active.get(`${zone}\0${domain}`) ?? 0;
  }

  /** When the earliest rate-limited domain of the zone may send again, if any is limited. */
  nextFreeAt(zone: string): number | undefined {
    let at: number | undefined;
    for (const [key, list] of this.starts) {
      if (!key.startsWith(`${zone}\0`) || !list.length) continue;
      const t = list[0]! + WINDOW_MS;
      at = at === undefined ? t : Math.min(at, t);
    }
    return at;
  }

  private recent(key: string): number[] {
    const cutoff = this.now() - WINDOW_MS;
    const list = this.starts.get(key) ?? [];
    while (list.length && list[0]! <= cutoff) list.shift();
    if (!list.length) this.starts.delete(key);
    return list;
  }
}
