/**
 * The MTA's own metrics, on the process's registry (metrics.ts): what was accepted and refused at
 * each door, what became of each delivery, and the queue's state read when scraped.
 *
 * Labels and their sets, all bounded: `door` (Origin.via: smtp, api, bounce, release), `reason`
 * (errors/reason-class.ts), `zone` (the configured zones; a row keeps the zone it was queued in),
 * `result` (delivered, deferred, bounced), `category` (bounce/categories.ts, "none" for a
 * delivery), `status` (queued, deferred, leased), `webhook` (its configured name). Never a
 * sender, a recipient or a remote domain.
 *
 * Gauges are computed at scrape time from what the queue keeps anyway (its counters, the
 * scheduler's leases, the size of the database folder): nothing here runs between scrapes.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { isReplyCategory } from '../bounce/categories.js';
import type { ReasonClass } from '../errors/reason-class.js';
import type { FinishedRow, OutcomeListener } from '../queue/outcomes.js';
import type { MessageMeta, Origin } from '../queue/types.js';

/** What the gauges read when scraped. */
export interface QueueSources {
  zones(): readonly string[];
  /** undefined while the queue's rows are still being counted after the start */
  rows(zone: string): { queued: number; deferred: number; held?: number } | undefined;
  /** leases held by workers now, per zone */
  leases(): Record<string, number>;
  /** the oldest deferred row's creation time per zone (ms), where there is one */
  oldestDeferred(): Promise<Record<string, number>>;
  /** the queue database's folder */
  dbPath: string;
}

const DURATION_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const QUEUE_TIME_BUCKETS_S = [1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86_400, 2 * 86_400, 5 * 86_400];

export class MtaMetrics implements OutcomeListener {
  private readonly acceptedTotal: Counter<'door'>;
  private readonly rejectedTotal: Counter<'door' | 'reason'>;
  private readonly deliveries: Counter<'zone' | 'result' | 'category'>;
  private readonly duration: Histogram<'zone' | 'result'>;
  private readonly queueTime: Histogram<'zone' | 'result'>;
  private readonly restarts: Counter<'zone'>;
  private readonly dropped: Counter<'webhook'>;

  constructor(registry: Registry, sources: QueueSources, now: () => number = Date.now) {
    const registers = [registry];
    this.acceptedTotal = new Counter({ name: 'sluice_messages_accepted_total', help: 'Messages stored in the queue, by door (smtp, api, bounce, release).', labelNames: ['door'], registers });
    this.rejectedTotal = new Counter({ name: 'sluice_messages_rejected_total', help: 'Messages and envelope commands refused, by door and reason class.', labelNames: ['door', 'reason'], registers });
    this.deliveries = new Counter({ name: 'sluice_deliveries_total', help: 'Delivery results by zone, result (delivered, deferred, bounced) and reply category.', labelNames: ['zone', 'result', 'category'], registers });
    this.duration = new Histogram({ name: 'sluice_delivery_duration_seconds', help: 'How long one delivery attempt took in the worker, by zone and result.', labelNames: ['zone', 'result'], buckets: DURATION_BUCKETS_S, registers });
    this.queueTime = new Histogram({ name: 'sluice_queue_time_seconds', help: 'Time from queueing to the final result (delivered or bounced), by zone and result.', labelNames: ['zone', 'result'], buckets: QUEUE_TIME_BUCKETS_S, registers });
    this.now = now;

    new Gauge({
      name: 'sluice_queue_rows',
      help: 'Delivery rows in the queue by zone and status (queued, deferred, held by an operator; leased: taken by a worker now, also counted in queued or deferred).',
      labelNames: ['zone', 'status'],
      registers,
      collect() {
        const leases = sources.leases();
        for (const zone of sources.zones()) {
          const r = sources.rows(zone);
          // undefined while the rows found at start are counted: no partial figure is shown
          if (r) {
            this.set({ zone, status: 'queued' }, r.queued);
            this.set({ zone, status: 'deferred' }, r.deferred);
            this.set({ zone, status: 'held' }, r.held ?? 0);
          }
          this.set({ zone, status: 'leased' }, leases[zone] ?? 0);
        }
      },
    });
    new Gauge({
      name: 'sluice_queue_oldest_deferred_seconds',
      help: 'Age of the oldest deferred row, by zone (0: none deferred).',
      labelNames: ['zone'],
      registers,
      async collect() {
        const oldest = await sources.oldestDeferred();
        const t = now();
        for (const zone of sources.zones()) this.set({ zone }, oldest[zone] === undefined ? 0 : Math.max(0, (t - oldest[zone]!) / 1000));
      },
    });
    new Gauge({
      name: 'sluice_leases_in_flight',
      help: 'Deliveries leased to workers now, by zone.',
      labelNames: ['zone'],
      registers,
      collect() {
        const leases = sources.leases();
        for (const zone of sources.zones()) this.set({ zone }, leases[zone] ?? 0);
      },
    });
    this.restarts = new Counter({ name: 'sluice_worker_restarts_total', help: 'Delivery workers that exited and were started again, by zone.', labelNames: ['zone'], registers });
    this.dropped = new Counter({ name: 'sluice_webhook_dropped_total', help: 'Webhook events dropped because too many were waiting, by webhook.', labelNames: ['webhook'], registers });
    // present from the start at 0, so a rate() over them works before the first restart
    for (const zone of sources.zones()) this.restarts.inc({ zone }, 0);
    new Gauge({
      name: 'sluice_queue_db_bytes',
      help: 'Size of the queue database (LevelDB) on disk.',
      registers,
      async collect() {
        this.set(await folderBytes(sources.dbPath));
      },
    });
  }

  private readonly now: () => number;

  workerRestarted(zone: string): void {
    this.restarts.inc({ zone });
  }

  webhookDropped(webhook: string, n = 1): void {
    this.dropped.inc({ webhook }, n);
  }

  accepted(door: Origin['via']): void {
    this.acceptedTotal.inc({ door });
  }

  rejected(door: Origin['via'], reason: ReasonClass): void {
    this.rejectedTotal.inc({ door, reason });
  }

  async delivered(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    this.count('delivered', rows, true);
  }

  async deferred(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    this.count('deferred', rows, false);
  }

  async bounced(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    this.count('bounced', rows, true);
  }

  private count(result: 'delivered' | 'deferred' | 'bounced', rows: FinishedRow[], final: boolean): void {
    const t = this.now();
    for (const { row, result: r } of rows) {
      const category = result === 'delivered' ? 'none' : r.category && isReplyCategory(r.category) ? r.category : 'other';
      this.deliveries.inc({ zone: row.zone, result, category });
      if (r.durationMs !== undefined) this.duration.observe({ zone: row.zone, result }, r.durationMs / 1000);
      if (final) this.queueTime.observe({ zone: row.zone, result }, Math.max(0, (t - row.created) / 1000));
    }
  }
}

/** Bytes of the files directly in a folder (LevelDB keeps its files flat); 0 when unreadable. */
async function folderBytes(dir: string): Promise<number> {
  try {
    const names = await readdir(dir);
    const sizes = await Promise.all(names.map((n) => stat(path.join(dir, n)).then((s) => (s.isFile() ? s.size : 0), () => 0)));
    return sizes.reduce((a, b) => a + b, 0);
  } catch {
    return 0;
  }
}
