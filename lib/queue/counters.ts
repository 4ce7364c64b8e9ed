/**
 * Live counts of pending deliveries per zone and per domain, kept in memory: counted from the
 * rows when the queue opens, then moved by every change, so GET /queue/:zone never scans.
 *
 * The count at open may run in the background (a queue of a million rows takes seconds to read):
 * it reads a snapshot of the rows taken before anything else touched the queue, and every change
 * after that snapshot moves the counters as usual, so snapshot + changes is the truth once the
 * count is done. Until then (`loading`) the numbers are partial, may even be negative for a
 * domain, and readers must say so rather than show them as counts.
 *
 * Bookkeeping is proportional to the domains with work: a domain's entry goes when it has no row
 * left (queued and deferred both 0), a zone keeps only its totals.
 */
import type { DeliveryRow, RowStatus } from './types.js';

interface Count {
  queued: number;
  deferred: number;
  held: number;
}

interface ZoneCount extends Count {
  processed: number;
  domains: Map<string, Count>;
}

export interface ZoneSnapshot {
  /** the count at open is still running: the figures are partial */
  loading: boolean;
  queued: number;
  deferred: number;
  held: number;
  processed: number;
  domains: { domain: string; queued: number; deferred: number; held: number }[];
}

export class QueueCounters {
  private zones = new Map<string, ZoneCount>();
  private counting = false;
  /** rows the count at open has read so far */
  private countedRows = 0;

  /** True while the count at open runs: the numbers are partial. */
  get loading(): boolean {
    return this.counting;
  }

  /** Rows the count at open has read so far (its progress). */
  get loadedRows(): number {
    return this.countedRows;
  }

  /** The count at open starts: changes from now on are on top of the snapshot it reads. */
  beginLoad(): void {
    this.counting = true;
    this.countedRows = 0;
  }

  /** One row of the snapshot, counted. */
  load(row: Pick<DeliveryRow, 'zone' | 'domain' | 'status'>): void {
    this.add(row, 1);
    this.countedRows++;
  }

  /** The count at open is done: from now on the numbers are the queue's. */
  endLoad(): void {
    this.counting = false;
  }

  add(row: Pick<DeliveryRow, 'zone' | 'domain' | 'status'>, delta: 1 | -1): void {
    const zone = this.zone(row.zone);
    zone[row.status] += delta;
    let domain = zone.domains.get(row.domain);
    if (!domain) zone.domains.set(row.domain, (domain = { queued: 0, deferred: 0, held: 0 }));
    domain[row.status] += delta;
    // exactly 0, not ≤ 0: while the count at open runs, a change may come before the row it undoes
    if (domain.queued === 0 && domain.deferred === 0 && domain.held === 0) zone.domains.delete(row.domain);
  }

  move(row: Pick<DeliveryRow, 'zone' | 'domain'>, from: RowStatus, to: RowStatus): void {
    if (from === to) return;
    this.add({ ...row, status: from }, -1);
    this.add({ ...row, status: to }, 1);
  }

  processed(zone: string, n = 1): void {
    this.zone(zone).processed += n;
  }

  snapshot(zone: string): ZoneSnapshot {
    const z = this.zones.get(zone);
    if (!z) return { loading: this.counting, queued: 0, deferred: 0, held: 0, processed: 0, domains: [] };
    const domains = [...z.domains].map(([domain, c]) => ({ domain, queued: c.queued, deferred: c.deferred, held: c.held }));
    domains.sort((a, b) => b.queued + b.deferred + b.held - (a.queued + a.deferred + a.held) || a.domain.localeCompare(b.domain));
    return { loading: this.counting, queued: z.queued, deferred: z.deferred, held: z.held, processed: z.processed, domains };
  }

  /** Domains with an entry now (each has rows: tests check the bookkeeping is released). */
  domainCount(zone: string): number {
    return this.zones.get(zone)?.domains.size ?? 0;
  }

  /** One zone's totals, without building its per-domain list (metrics read this on every scrape). */
  zoneTotals(zone: string): Count {
    const z = this.zones.get(zone);
    return { queued: z?.queued ?? 0, deferred: z?.deferred ?? 0, held: z?.held ?? 0 };
  }

  totals(): Count {
    let queued = 0;
    let deferred = 0;
    let held = 0;
    for (const z of this.zones.values()) {
      queued += z.queued;
      deferred += z.deferred;
      held += z.held;
    }
    return { queued, deferred, held };
  }

  /** The zones with rows in them now. */
  zoneNames(): string[] {
    return [...this.zones.keys()];
  }

  private zone(name: string): ZoneCount {
    let z = this.zones.get(name);
    if (!z) this.zones.set(name, (z = { queued: 0, deferred: 0, held: 0, processed: 0, domains: new Map() }));
    return z;
  }
}
