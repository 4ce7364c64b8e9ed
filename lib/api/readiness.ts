/**
 * Readiness (GET /health/ready): whether this instance should be sent mail now. Ready when every
 * listener is up, the queue database is open and writable with room on its disk, every zone that
 * runs workers has at least one connected to the data channel, and no zone is stalled.
 *
 * A zone is stalled when it has rows that have been due for longer than `stalledAfterMs` and no
 * attempt in that zone started or ended within that time: workers connected but taking nothing
 * is the failure the other checks cannot see. Every check is cheap: in-memory figures and at most
 * one index key read per zone.
 */
export interface ReadinessSources {
  stalledAfterMs: number;
  /** zones that run workers (processes > 0) */
  zones: readonly string[];
  listenersUp(): boolean;
  db(): { open: boolean; writable: boolean; diskRoom: boolean };
  /** connected workers per zone */
  workers(): Record<string, number>;
  /** whether the zone has a row due at or before `ms` */
  dueBefore(zone: string, ms: number): Promise<boolean>;
  now?: () => number;
}

export interface ReadinessReport {
  ready: boolean;
  listeners: boolean;
  db: { open: boolean; writable: boolean; diskRoom: boolean };
  zones: Record<string, { workers: number; stalled: boolean; lastAttempt: string | null }>;
}

export class Readiness {
  private readonly lastAttempt = new Map<string, number>();
  private readonly since: number;
  private readonly now: () => number;

  constructor(private readonly sources: ReadinessSources) {
    this.now = sources.now ?? Date.now;
    // before a first attempt, the start counts as one: a zone is not stalled at start-up
    this.since = this.now();
  }

  /** An attempt in the zone started (a lease was granted) or ended (a result came back). */
  attempted(zone: string): void {
    this.lastAttempt.set(zone, this.now());
  }

  async check(): Promise<ReadinessReport> {
    const s = this.sources;
    const now = this.now();
    const workers = s.workers();
    const db = s.db();
    const zones: ReadinessReport['zones'] = {};
    let ready = s.listenersUp() && db.open && db.writable && db.diskRoom;
    for (const zone of s.zones) {
      const last = this.lastAttempt.get(zone);
      const quietSince = last ?? this.since;
      const stalled = now - quietSince > s.stalledAfterMs && db.open && (await s.dueBefore(zone, now - s.stalledAfterMs));
      const n = workers[zone] ?? 0;
      zones[zone] = { workers: n, stalled, lastAttempt: last === undefined ? null : new Date(last).toISOString() };
      if (n === 0 || stalled) ready = false;
    }
    return { ready, listeners: s.listenersUp(), db, zones };
  }
}
