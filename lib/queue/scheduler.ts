/**
 * The scheduler: hands due deliveries to workers under lease, and keeps the zone's limits.
 *
 * - A worker's `fetch` waits (long poll) until a delivery of its zone is due and allowed.
 * - A job is one message to one domain: the first due row, plus the rows of the same message and
 *   domain next to it in the index (they share their due time), up to the per-transaction limit.
 * - Limits per zone and domain: connections at once (connectionsPerDomain) and messages per minute
 *   (domainRatePerMinute), shared by every process of the zone because only the master decides.
 *
 * Invariants: a row is leased by at most one worker at a time. Leases live in memory only: when
 * the worker's channel closes, or the lease expires, its rows are simply due again; when the
 * master dies, every lease is gone and nothing was marked as taken on disk. A lease never makes a
 * delivery disappear; only a reported outcome does.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Job } from '../channel/protocol.js';
import { decodeScheduleKey, keys } from './keys.js';
import type { QueueStore } from './store.js';
import type { DeliveryRow, MessageMeta } from './types.js';
import { DomainLimits } from '../zones/domain-limits.js';

/** How many index keys one pass may read before it gives up for now. */
const SCAN_BUDGET = 5000;
/** A pass that stopped at its budget with workers still waiting goes on this soon, from there. */
const CONTINUE_MS = 100;
/** Even with nothing due, look again this often (a safety net for missed wake-ups). */
const IDLE_RECHECK_MS = 5000;
/** A worker closes an idle session at sessionIdle; the master counts it a little longer. */
const HOLD_MARGIN_MS = 1000;

export interface Lease {
  leaseId: string;
  owner: string;
  zone: string;
  domain: string;
  id: string;
  rows: DeliveryRow[];
  meta: MessageMeta;
  timer: NodeJS.Timeout;
  /** its outcome is being written: the rows stay taken until that is done */
  reporting?: boolean;
}

interface Waiter {
  owner: string;
  resolve: (job: Job) => void;
  reject: (err: Error) => void;
}

interface Group {
  id: string;
  domain: string;
  keys: { seq: number; due: number }[];
  waiter: Waiter;
}

interface ZoneState {
  waiters: Waiter[];
  pumping: boolean;
  again: boolean;
  timer?: NodeJS.Timeout;
  timerAt?: number;
  /** the last key read by a pass that stopped at its budget: the next pass starts after it */
  cursor?: string;
}

export class SchedulerClosedError extends Error {}

export class Scheduler {
  private readonly leases = new Map<string, Lease>();
  private readonly leasedRows = new Set<string>();
  private readonly zones = new Map<string, ZoneState>();
  readonly limits: DomainLimits;
  private closed = false;

  constructor(
    private readonly store: QueueStore,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.limits = new DomainLimits(config, now);
  }

  /** Waits for the next due delivery of `zone` and leases it to `owner`. */
  fetch(owner: string, zone: string): Promise<Job> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('scheduler closed'));
    return new Promise((resolve, reject) => {
      this.zone(zone).waiters.push({ owner, resolve, reject });
      this.wake(zone);
    });
  }

  /** Something changed for `zone` (new mail, a slot freed): look for work. */
  wake(zone: string): void {
    const state = this.zone(zone);
    if (!state.waiters.length) return;
    if (state.pumping) {
      state.again = true;
      return;
    }
    void this.pump(zone, state);
  }

  wakeAll(): void {
    for (const zone of this.zones.keys()) this.wake(zone);
  }

  lease(leaseId: string): Lease | undefined {
    return this.leases.get(leaseId);
  }

  /** Ends a lease (its outcome was recorded, or it is given up): rows become free again. */
  endLease(leaseId: string): Lease | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    for (const row of lease.rows) this.leasedRows.delete(rowKey(row.id, row.seq));
    this.limits.release(lease.zone, lease.domain);
    this.wake(lease.zone);
    return lease;
  }

  /**
   * Records a worker's report for a lease it holds: `apply` writes the outcome, then the lease
   * ends. A report for a lease that expired or belongs to another connection changes nothing.
   * While the outcome is being written the lease is not released, even if the worker's channel
   * closes or the lease expires meanwhile: releasing it then made the rows due before their
   * outcome was on disk, and a delivered message could be handed out again (a duplicate).
   */
  async settle(leaseId: string, owner: string, apply: (lease: Lease) => Promise<void>, keptSession = false): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.owner !== owner || lease.reporting) return;
    lease.reporting = true;
    try {
      await apply(lease);
    } finally {
      lease.reporting = false;
      // the worker kept its session open for the next message: it still counts as a connection
      // to that domain until the worker's idle time is surely over (set before the lease ends,
      // so no scan sees the domain with a free connection in between)
      const idleMs = this.config.delivery.sessionIdle;
      if (keptSession && idleMs > 0 && this.leases.has(leaseId)) this.limits.hold(lease.zone, lease.domain, owner, this.now() + idleMs + HOLD_MARGIN_MS);
      this.endLease(leaseId);
    }
  }

  /** A worker's channel closed: everything it held or waited for is released at once. Returns
   * the ids of the messages whose deliveries are due again. */
  releaseOwner(owner: string): string[] {
    const released: string[] = [];
    for (const lease of [...this.leases.values()]) {
      if (lease.owner === owner && !lease.reporting) {
        this.endLease(lease.leaseId);
        released.push(lease.id);
      }
    }
    for (const state of this.zones.values()) {
      const keep: Waiter[] = [];
      for (const w of state.waiters) {
        if (w.owner === owner) w.reject(new SchedulerClosedError('worker gone'));
        else keep.push(w);
      }
      state.waiters = keep;
    }
    // its idle sessions died with it: their domains may take a new connection
    this.limits.dropHolds(owner);
    this.wakeAll();
    return released;
  }

  /** Rows currently leased, for status and tests. */
  get leasedCount(): number {
    return this.leasedRows.size;
  }

  leasesOf(owner: string): number {
    let n = 0;
    for (const lease of this.leases.values()) if (lease.owner === owner) n++;
    return n;
  }

  isLeased(id: string, seq: number): boolean {
    return this.leasedRows.has(rowKey(id, seq));
  }

  close(): void {
    this.closed = true;
    for (const state of this.zones.values()) {
      clearTimeout(state.timer);
      for (const w of state.waiters.splice(0)) w.reject(new SchedulerClosedError('scheduler closed'));
    }
    for (const lease of this.leases.values()) clearTimeout(lease.timer);
  }

  private zone(zone: string): ZoneState {
    let state = this.zones.get(zone);
    if (!state) this.zones.set(zone, (state = { waiters: [], pumping: false, again: false }));
    return state;
  }

  private async pump(zone: string, state: ZoneState): Promise<void> {
    state.pumping = true;
    try {
      for (;;) {
        state.again = false;
        const unread = await this.fill(zone, state);
        if (!state.waiters.length || this.closed) break;
        if (state.again) continue;
        if (unread) {
          // part of the due range was not read; go on from the cursor soon (not at once: a
          // backlog that cannot start, e.g. a rate-limited domain, would otherwise keep the
          // master busy reading it over and over)
          this.setTimer(zone, state, this.now() + CONTINUE_MS);
          break;
        }
        await this.armTimer(zone, state);
        // a wake that came while the timer was being armed (a lease ended, a worker asked for
        // work) must not wait for that timer: it was lost before, and a due row then sat for up
        // to a second or more (seen in F6 as a 1.1 s gap before an attempt)
        if (!state.again) break;
      }
    } catch (err) {
      this.logger.error({ err, zone }, 'scheduler pass failed');
      this.setTimer(zone, state, this.now() + 1000);
    } finally {
      state.pumping = false;
    }
  }

  /**
   * One pass over the due part of the zone's index, handing jobs to as many waiters as it can.
   * A job is one message to one domain: the due rows of a message are next to each other in the
   * index (same due time), with their domains mixed in recipient order, so each domain of the
   * message being read gets its own group (a message to a@x, b@y, c@x makes one transaction to
   * x with both, not two).
   *
   * A pass reads at most SCAN_BUDGET keys. When it stops there with workers still waiting, the
   * next pass starts after the last key it read, so rows further on are reached too: before, a
   * backlog of more than SCAN_BUDGET rows that could not start (a rate-limited domain) hid every
   * other domain queued behind it. Returns true when it stopped at the budget.
   */
  private async fill(zone: string, state: ZoneState): Promise<boolean> {
    const now = this.now();
    const maxRows = this.config.delivery.maxRecipientsPerTransaction;
    let scanned = 0;
    /** waiters this pass may still hand work to */
    const free = [...state.waiters];
    const groups: Group[] = [];
    /** the groups of the message being read, by domain (the last one, while it has room) */
    let open = new Map<string, Group>();
    let openId: string | undefined;
    const blockedDomains = new Set<string>();
    const due = keys.scheduleDue(zone, now);
    const range = state.cursor && state.cursor >= due.gte && state.cursor < due.lte ? { gt: state.cursor, lte: due.lte } : due;
    state.cursor = undefined;
    let lastKey: string | undefined;
    let unread = false;

    for await (const [key, value] of this.store.db.iterator(range)) {
      if (++scanned > SCAN_BUDGET) {
        state.cursor = lastKey;
        unread = true;
        break;
      }
      lastKey = key;
      const { id, seq, dueMs } = decodeScheduleKey(key);
      const domain = value.toString();
      if (this.leasedRows.has(rowKey(id, seq))) continue;
      if (id !== openId) {
        if (!free.length) break;
        open = new Map();
        openId = id;
      }
      const g = open.get(domain);
      if (g && g.keys.length < maxRows) {
        g.keys.push({ seq, due: dueMs });
        continue;
      }
      if (!free.length || blockedDomains.has(domain)) continue;
      // count the connection now, so the rest of this pass sees it
      const waiter = this.claim(zone, domain, free);
      if (!waiter) {
        blockedDomains.add(domain);
        continue;
      }
      const next: Group = { id, domain, keys: [{ seq, due: dueMs }], waiter };
      open.set(domain, next);
      groups.push(next);
    }

    for (const g of groups) {
      const i = state.waiters.indexOf(g.waiter);
      if (i < 0) {
        // its worker left during the scan: the rows stay due, the connection was never made
        this.limits.release(zone, g.domain);
        continue;
      }
      state.waiters.splice(i, 1);
      const job = await this.makeJob(zone, g, g.waiter.owner);
      if (job) g.waiter.resolve(job);
      else state.waiters.unshift(g.waiter);
    }
    return unread;
  }

  /**
   * A waiter for a new delivery to `domain`, taken from `free`, with the connection counted: the
   * worker that keeps an idle session to that domain, when it has a slot free (no new
   * connection); else any worker, when the domain's limits allow one more connection.
   */
  private claim(zone: string, domain: string, free: Waiter[]): Waiter | undefined {
    const i = free.findIndex((w) => this.limits.hasHold(zone, domain, w.owner));
    if (i >= 0 && this.limits.useHold(zone, domain, free[i]!.owner)) return free.splice(i, 1)[0];
    if (!this.limits.mayStart(zone, domain)) return undefined;
    this.limits.acquire(zone, domain);
    return free.shift();
  }

  private async makeJob(zone: string, g: { id: string; domain: string; keys: { seq: number; due: number }[] }, owner: string): Promise<Job | undefined> {
    const meta = await this.store.getMeta(g.id);
    const rowValues = await this.store.db.getMany(g.keys.map((k) => keys.row(g.id, k.seq)));
    const rows: DeliveryRow[] = [];
    const stale: string[] = [];
    rowValues.forEach((value, i) => {
      const k = g.keys[i]!;
      if (value === undefined || !meta) {
        stale.push(keys.schedule(zone, k.due, g.id, k.seq));
        return;
      }
      const row = JSON.parse(value.toString('utf8')) as DeliveryRow;
      // The scan reads an iterator snapshot: an outcome recorded meanwhile may have moved the
      // row to a later time (its lease ended, so it is not "leased" any more). The row's own
      // due time is the truth; trying it now would be an early retry (seen in F4: a second
      // attempt 30 ms after a deferral).
      if (row.due !== k.due) return;
      rows.push(row);
    });
    if (stale.length) {
      // index keys whose row or message is gone (deleted by an operator mid-scan): drop them
      await this.store.db.batch(stale.map((key) => ({ type: 'del' as const, key })));
    }
    if (!meta || !rows.length) {
      this.limits.release(zone, g.domain);
      return undefined;
    }
    const leaseId = randomUUID();
    for (const row of rows) this.leasedRows.add(rowKey(row.id, row.seq));
    const timer = setTimeout(() => {
      if (this.leases.get(leaseId)?.reporting) return; // settle() ends it when the write is done
      this.logger.warn({ event: 'LEASE_EXPIRED', leaseId, id: g.id, owner }, `lease ${leaseId} of ${g.id} expired; its rows are due again`);
      this.endLease(leaseId);
    }, this.config.queue.leaseTimeout);
    timer.unref();
    this.leases.set(leaseId, { leaseId, owner, zone, domain: g.domain, id: g.id, rows, meta, timer });
    return {
      leaseId,
      id: g.id,
      zone,
      domain: g.domain,
      from: meta.from,
      rows: rows.map((r) => ({ seq: r.seq, recipient: r.recipient })),
      headers: meta.headers,
      bodyHash: meta.bodyHash,
      size: meta.size,
      chunks: meta.chunks,
      messageId: meta.messageId,
      created: meta.created,
      attempts: Math.max(...rows.map((r) => r.attempts)),
      lastCategory: rows.find((r) => r.category)?.category,
    };
  }

  /** Sleeps until the next row of the zone is due (or a domain limit may have eased). */
  private async armTimer(zone: string, state: ZoneState): Promise<void> {
    const now = this.now();
    let next = now + IDLE_RECHECK_MS;
    for await (const key of this.store.db.keys({ ...keys.scheduleAfter(zone, now), limit: 1 })) {
      next = Math.min(next, decodeScheduleKey(key).dueMs);
    }
    const rateFree = this.limits.nextFreeAt(zone);
    if (rateFree !== undefined) next = Math.min(next, rateFree);
    this.setTimer(zone, state, Math.max(next, now + 10));
  }

  private setTimer(zone: string, state: ZoneState, at: number): void {
    if (state.timer && state.timerAt !== undefined && state.timerAt <= at) return;
    clearTimeout(state.timer);
    state.timerAt = at;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      state.timerAt = undefined;
      this.wake(zone);
    }, at - this.now());
    state.timer.unref();
  }
}

function rowKey(id: string, seq: number): string {
  return `${id}:${seq}`;
}
