/**
 * The master's view of itself for operators: the MTA metrics (on the process's registry) and the
 * readiness checks, both reading the queue, the scheduler and the data channel as they are. Kept
 * out of master.ts so that the composition root only wires: it calls this once the queue and the
 * scheduler exist, and hands the result to ingest, the outcome listeners and the health routes.
 */
import type { Registry } from 'prom-client';
import { MtaMetrics } from '../api/mta-metrics.js';
import { Readiness } from '../api/readiness.js';
import type { Config } from '../config/schema.js';
import type { DiskGuard } from '../queue/disk-space.js';
import { OldestDeferred } from '../queue/oldest-deferred.js';
import type { Scheduler } from '../queue/scheduler.js';
import type { QueueStore } from '../queue/store.js';

export interface ObserveParts {
  config: Config;
  registry: Registry;
  store: QueueStore;
  scheduler: Scheduler;
  disk: DiskGuard;
  /** every listener is up and no stop has begun */
  serving: () => boolean;
  /** worker ids connected to the data channel now (started after this is called) */
  connectedWorkers: () => readonly string[];
  /** the zone a worker id belongs to */
  zoneOf: (workerId: string) => string | undefined;
}

export function observe(parts: ObserveParts): { metrics: MtaMetrics; readiness: Readiness } {
  const { config, store, scheduler, disk } = parts;
  const zones = () => Object.keys(config.zones);
  const oldest = new OldestDeferred(store, zones);
  const readiness = new Readiness({
    stalledAfterMs: config.queue.stalledAfter,
    zones: Object.entries(config.zones).flatMap(([name, z]) => (z.processes > 0 ? [name] : [])),
    listenersUp: parts.serving,
    db: () => ({ open: store.isOpen, writable: store.isOpen && store.writable, diskRoom: disk.hasRoom(0) }),
    workers: () => {
      const byZone: Record<string, number> = {};
      for (const id of parts.connectedWorkers()) {
        const zone = parts.zoneOf(id);
        if (zone) byZone[zone] = (byZone[zone] ?? 0) + 1;
      }
      return byZone;
    },
    dueBefore: async (zone, ms) => {
      for await (const _ of store.scanDue(zone, ms)) return true;
      return false;
    },
  });
  const metrics = new MtaMetrics(parts.registry, {
    zones,
    rows: (zone) => (store.counters.loading ? undefined : store.counters.zoneTotals(zone)),
    leases: () => scheduler.leasedByZone(),
    oldestDeferred: () => oldest.get(),
    dbPath: config.queue.path,
  });
  return { metrics, readiness };
}
