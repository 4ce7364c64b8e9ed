/**
 * The lease table: which rows are out of the scheduler's hands. A worker holds rows under a lease,
 * until its outcome or a timeout; an operator's change (admin.ts: hold, delete, reschedule) pins
 * the rows it is writing, so that a scan which read their old index keys does not lease them
 * meanwhile. A row that is leased or pinned is *taken*: the scheduler hands out no taken row.
 *
 * Invariants: a row is leased by at most one worker at a time, and is never leased and pinned at
 * once (a leased row is left out of a pin: its attempt runs and its outcome decides). Leases live in memory only: when
 * the worker's channel closes its rows are simply due again; when the master dies, every lease is
 * gone and nothing was marked as taken on disk. A lease never makes a delivery disappear; only a
 * reported outcome does.
 *
 * A lease that expires (queue.leaseTimeout: the worker's own attempt deadline should have ended
 * the attempt long before) is not handed out again while its attempt may still run: the worker
 * is told to cancel it (LeaseEnforcer.expired) and its report is still taken, so a late
 * "delivered" is never dropped and a second attempt never runs beside the first. A worker that
 * does not report within a grace period after that is cut off (abandoned): its connection
 * closes, which releases everything it held, and the worker exits. A lease whose outcome is
 * being written (`reporting`) never expires.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { DeliveryRow, MessageMeta } from './types.js';

/** How long a worker told to cancel an expired lease's attempt has to report: a quarter of the
 * lease, at least 1 s and at most a minute. */
export const cancelGraceMs = (leaseMs: number) => Math.min(60_000, Math.max(1000, Math.floor(leaseMs / 4)));

export interface Lease {
  leaseId: string;
  owner: string;
  zone: string;
  domain: string;
  id: string;
  rows: DeliveryRow[];
  meta: MessageMeta;
  /** cancels the lease's current timer (expiry, then the grace period) */
  cancelTimer: () => void;
  /** its outcome is being written: the rows stay taken until that is done */
  reporting?: boolean;
  /** the earliest next attempt of a row this lease's outcome deferred */
  nextDue?: number;
}

/** What the table asks of the data channel when a lease outlives queue.leaseTimeout. */
export interface LeaseEnforcer {
  /** tell the lease's worker to stop the attempt and report */
  expired(lease: Lease): void;
  /** the worker did not report after that either: cut its connection (its leases are released) */
  abandoned(owner: string): void;
}

export interface LeaseTableOptions {
  leaseTimeoutMs: number;
  clock: Clock;
  logger: Logger;
  /** without one (tests of the scheduler alone) an expired lease simply ends */
  enforcer?: LeaseEnforcer;
  /** ends a lease the table gave up on (expired without an enforcer, or abandoned): the
   * scheduler frees its rows and its connection */
  end: (leaseId: string) => void;
}

export const rowKey = (id: string, seq: number): string => `${id}:${seq}`;

export class LeaseTable {
  private readonly leases = new Map<string, Lease>();
  private readonly leasedRows = new Set<string>();
  private readonly pinnedRows = new Set<string>();

  constructor(private readonly opts: LeaseTableOptions) {}

  get(leaseId: string): Lease | undefined {
    return this.leases.get(leaseId);
  }

  has(leaseId: string): boolean {
    return this.leases.has(leaseId);
  }

  /** Every lease held now. */
  values(): IterableIterator<Lease> {
    return this.leases.values();
  }

  /** Rows currently leased. */
  get rowCount(): number {
    return this.leasedRows.size;
  }

  isLeased(id: string, seq: number): boolean {
    return this.leasedRows.has(rowKey(id, seq));
  }

  /** Leased or pinned: not to be handed out (`key` as rowKey makes it). */
  isTakenKey(key: string): boolean {
    return this.leasedRows.has(key) || this.pinnedRows.has(key);
  }

  isTaken(id: string, seq: number): boolean {
    return this.isTakenKey(rowKey(id, seq));
  }

  /** Rows leased now, per zone (metrics). */
  rowsByZone(): Record<string, number> {
    const byZone: Record<string, number> = {};
    for (const lease of this.leases.values()) byZone[lease.zone] = (byZone[lease.zone] ?? 0) + lease.rows.length;
    return byZone;
  }

  countOf(owner: string): number {
    let n = 0;
    for (const lease of this.leases.values()) if (lease.owner === owner) n++;
    return n;
  }

  /** The leases of `owner` whose outcome is not being written (they may be released now). */
  releasableOf(owner: string): Lease[] {
    return [...this.leases.values()].filter((lease) => lease.owner === owner && !lease.reporting);
  }

  /** Leases `rows` (one message, one domain) to `owner` until queue.leaseTimeout. */
  grant(owner: string, zone: string, domain: string, meta: MessageMeta, rows: DeliveryRow[]): Lease {
    const leaseId = randomUUID();
    for (const row of rows) this.leasedRows.add(rowKey(row.id, row.seq));
    const cancelTimer = this.opts.clock.after(this.opts.leaseTimeoutMs, () => this.expire(leaseId));
    const lease: Lease = { leaseId, owner, zone, domain, id: meta.id, rows, meta, cancelTimer };
    this.leases.set(leaseId, lease);
    return lease;
  }

  /** Takes a lease out of the table; its rows are free. */
  remove(leaseId: string): Lease | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    lease.cancelTimer();
    this.leases.delete(leaseId);
    for (const row of lease.rows) this.leasedRows.delete(rowKey(row.id, row.seq));
    return lease;
  }

  /**
   * Pins the rows of `rows` that are not taken (neither leased nor pinned already) and returns
   * them: they stay taken until `unpin`. Synchronous, so no lease is granted between the check
   * and the pin.
   */
  pin<R extends { id: string; seq: number }>(rows: readonly R[]): R[] {
    const free = rows.filter((r) => !this.isTaken(r.id, r.seq));
    for (const r of free) this.pinnedRows.add(rowKey(r.id, r.seq));
    return free;
  }

  unpin(rows: readonly { id: string; seq: number }[]): void {
    for (const r of rows) this.pinnedRows.delete(rowKey(r.id, r.seq));
  }

  close(): void {
    for (const lease of this.leases.values()) lease.cancelTimer();
  }

  /** queue.leaseTimeout passed without a report: cancel the attempt, then wait a little more. */
  private expire(leaseId: string): void {
    const { enforcer, logger, clock } = this.opts;
    const lease = this.leases.get(leaseId);
    if (!lease || lease.reporting) return; // settled when the write is done
    if (!enforcer) {
      logger.warn({ event: 'LEASE_EXPIRED', leaseId, id: lease.id, owner: lease.owner }, `lease ${leaseId} of ${lease.id} expired; its rows are due again`);
      this.opts.end(leaseId);
      return;
    }
    const graceMs = cancelGraceMs(this.opts.leaseTimeoutMs);
    logger.warn({ event: 'LEASE_EXPIRED', leaseId, id: lease.id, owner: lease.owner, graceMs }, `lease ${leaseId} of ${lease.id} expired; its worker is told to cancel the attempt and report within ${graceMs} ms`);
    enforcer.expired(lease);
    lease.cancelTimer = clock.after(graceMs, () => {
      const late = this.leases.get(leaseId);
      if (!late || late.reporting) return;
      logger.error({ event: 'LEASE_ABANDONED', leaseId, id: late.id, owner: late.owner }, `the worker holding lease ${leaseId} of ${late.id} did not report after it was cancelled; cutting it off (its deliveries are due again)`);
      enforcer.abandoned(late.owner);
      // the channel released the owner's leases if it knew it; if not, the lease ends here
      if (this.leases.has(leaseId)) this.opts.end(leaseId);
    });
  }
}
