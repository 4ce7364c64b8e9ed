/**
 * Live counts of pending deliveries per zone and per domain, kept in memory: rebuilt from the
 * rows when the queue opens, then moved by every change, so GET /queue/:zone never scans.
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
  queued: number;
  deferred: number;
  held: number;
  processed: number;
  domains: { domain: string; queued: number; deferred: number; held: number }[];
}

export class QueueCounters {
  private zones = new Map<string, ZoneCount>();

  add(row: Pick<DeliveryRow, 'zone' | 'domain' | 'status'>, delta: 1 | -1): void {
    const zone = this.zone(row.zone);
    zone[row.status] += delta;
    let domain = zone.domains.get(row.domain);
    if (!domain) zone.domains.set(row.domain, (domain = { queued: 0, deferred: 0, held: 0 }));
    domain[row.status] += delta;
    if (domain.queued <= 0 && domain.deferred <= 0 && domain.held <= 0) zone.domains.delete(row.domain);
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
    if (!z) return { queued: 0, deferred: 0, held: 0, processed: 0, domains: [] };
    const domains = [...z.domains].map(([domain, c]) => ({ domain, queued: c.queued, deferred: c.deferred, held: c.held }));
    domains.sort((a, b) => b.queued + b.deferred + b.held - (a.queued + a.deferred + a.held) || a.domain.localeCompare(b.domain));
    return { queued: z.queued, deferred: z.deferred, held: z.held, processed: z.processed, domains };
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
