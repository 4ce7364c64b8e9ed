/**
 * The scheduler: hands due deliveries to workers under lease, and keeps the zone's limits.
 *
 * - A worker's `fetch` waits (long poll) until a delivery of its zone is due and allowed.
 * - A job is one message to one domain: the first due row, plus the rows of the same message and
 *   domain next to it in the index (they share their due time), up to the per-transaction limit.
 * - Limits per zone and domain: connections at once (connectionsPerDomain) and messages per minute
 *   (domainRatePerMinute), shared by every process of the zone because only the master decides.
 *
 * Two ways in. Fresh mail: right after its commit, the message (metadata and rows, as they were
 * written) is offered here and handed to a waiting worker from memory, without reading LevelDB.
 * Everything else (retries coming due, rows a worker gave back, mail accepted while every worker
 * was busy, whatever was queued before a restart) is found by scanning the zone's index on disk.
 * A scan runs only when the disk may hold due rows that nobody holds (`diskDirty`): before, every
 * pass scanned, twice (the due range and the next due time), and at 2 KB those scans and reads were
 * most of the master's delivery-side cost. The fresh lane is bounded by count per zone and by
 * bytes in all (an offer holds its header block, up to queue.maxHeaderSize, and its rows); an
 * offer that does not fit, or rows it cannot start now (domain limits), are left to the scan.
 *
 * Invariants: a row is leased by at most one worker at a time. Leases live in memory only: when
 * the worker's channel closes its rows are simply due again; when the master dies, every lease is
 * gone and nothing was marked as taken on disk. A lease never makes a delivery disappear; only a
 * reported outcome does.
 *
 * A lease that expires (queue.leaseTimeout: the worker's own attempt deadline should have ended
 * the attempt long before) is not handed out again while its attempt may still run: the worker
 * is told to cancel it (onExpired) and its report is still taken, so a late "delivered" is never
 * dropped and a second attempt never runs beside the first. A worker that does not report within
 * a grace period after that is cut off (onAbandoned): its connection closes, which releases
 * everything it held, and the worker exits.
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
/** How long a worker told to cancel an expired lease's attempt has to report: a quarter of the
 * lease, at least 1 s and at most a minute. */
const cancelGraceMs = (leaseMs: number) => Math.min(60_000, Math.max(1000, Math.floor(leaseMs / 4)));

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
  /** the earliest next attempt of a row this lease's outcome deferred (see noteDue) */
  nextDue?: number;
}

/** What the scheduler asks of the data channel when a lease outlives queue.leaseTimeout. */
export interface LeaseEnforcer {
  /** tell the lease's worker to stop the attempt and report */
  expired(lease: Lease): void;
  /** the worker did not report after that either: cut its connection (releaseOwner follows) */
  abandoned(owner: string): void;
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

/** A message just committed, waiting in memory for a worker. */
interface FreshOffer {
  meta: MessageMeta;
  rows: DeliveryRow[];
  /** its estimated size in memory (offerBytes) */
  bytes: number;
}

/** Fresh offers kept per zone at most; past this, new mail is found by the disk scan. */
const MAX_FRESH = 2000;
/**
 * Bytes of fresh offers kept in all zones together. A count alone let 2,000 offers per zone
 * hold a header block of up to queue.maxHeaderSize (1 MB) each; typical mail (a few KB of
 * headers) stays under the count long before this.
 */
const MAX_FRESH_BYTES = 16 * 1024 * 1024;
/** What an offer and one of its rows cost in memory besides the header block and addresses. */
const OFFER_OVERHEAD_BYTES = 1024;
const ROW_OVERHEAD_BYTES = 256;

function offerBytes(meta: MessageMeta, rows: readonly DeliveryRow[]): number {
  let bytes = OFFER_OVERHEAD_BYTES + meta.headers.length;
  for (const r of rows) bytes += ROW_OVERHEAD_BYTES + r.recipient.length;
  return bytes;
}

interface ZoneState {
  waiters: Waiter[];
  /** fresh offers, oldest first */
  fresh: FreshOffer[];
  /** the disk may hold due rows that are neither leased nor offered: scan before resting */
  diskDirty: boolean;
  /** the last scan left due rows behind because of domain limits: a freed slot means scan again */
  blocked: boolean;
  pumping: boolean;
  again: boolean;
  timer?: NodeJS.Timeout;
  timerAt?: number;
  /** the last key read by a pass that stopped at its budget: the next pass starts after it */
  cursor?: string;
  /** the due time up to which the last scan read: the timer looks for rows after it */
  scannedUpTo: number;
  /** a scan ran since the timer was last armed from the disk */
  armPending: boolean;
}

export class SchedulerClosedError extends Error {}

export class Scheduler {
  private readonly leases = new Map<string, Lease>();
  private readonly leasedRows = new Set<string>();
  /** rows waiting in a fresh offer (the scan leaves them to the offer; a grant takes them out) */
  private readonly offered = new Set<string>();
  private readonly zones = new Map<string, ZoneState>();
  /** the bytes of every zone's fresh offers (MAX_FRESH_BYTES) */
  private freshBytes = 0;
  readonly limits: DomainLimits;
  private closed = false;

  constructor(
    private readonly store: QueueStore,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    /** without one (tests of the scheduler alone) an expired lease's rows are simply due again */
    private readonly enforcer?: LeaseEnforcer,
  ) {
    this.limits = new DomainLimits(config, now);
  }

  /** Waits for the next due delivery of `zone` and leases it to `owner`. */
  fetch(owner: string, zone: string): Promise<Job> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('scheduler closed'));
    return new Promise((resolve, reject) => {
      const state = this.zone(zone);
      state.waiters.push({ owner, resolve, reject });
      // rows held back by a domain limit may go to this worker: it may keep an idle session to
      // that domain, which needs no new connection
      if (state.blocked) state.diskDirty = true;
      this.kick(zone);
    });
  }

  /** Rows of `zone` may have become due on disk (a retry, a requeue): look for work there. */
  wake(zone: string): void {
    this.zone(zone).diskDirty = true;
    this.kick(zone);
  }

  /**
   * A message was just committed: its due rows may go to waiting workers of their zones straight
   * from memory. Rows due later (a future Date header), or an offer past a zone's bound, are
   * left to the disk scan.
   */
  offer(meta: MessageMeta, rows: DeliveryRow[]): void {
    const now = this.now();
    for (const zone of new Set(rows.map((r) => r.zone))) {
      const state = this.zone(zone);
      const mine = rows.filter((r) => r.zone === zone);
      const due = mine.filter((r) => r.due <= now);
      if (due.length < mine.length) state.diskDirty = true; // the later ones come due by the timer
      const bytes = due.length ? offerBytes(meta, due) : 0;
      if (due.length && state.fresh.length < MAX_FRESH && this.freshBytes + bytes <= MAX_FRESH_BYTES) {
        state.fresh.push({ meta, rows: due, bytes });
        this.freshBytes += bytes;
        for (const r of due) this.offered.add(rowKey(r.id, r.seq));
      } else if (due.length) {
        state.diskDirty = true;
      }
      this.kick(zone);
    }
  }

  /** A message was deleted: an offer of it must not be handed out. */
  forget(id: string): void {
    for (const state of this.zones.values()) {
      state.fresh = state.fresh.filter((o) => {
        if (o.meta.id !== id) return true;
        for (const r of o.rows) this.offered.delete(rowKey(r.id, r.seq));
        this.freshBytes -= o.bytes;
        return false;
      });
    }
  }

  /**
   * A deferred row's next attempt, told while its lease's outcome is being written. The row is
   * still leased until then, so a scan now would pass it by: the lease remembers the time, and
   * its end either marks the disk (already due) or sets the zone's timer (due later).
   */
  noteDue(leaseId: string, zone: string, dueMs: number): void {
    const lease = this.leases.get(leaseId);
    if (lease) {
      lease.nextDue = Math.min(lease.nextDue ?? Infinity, dueMs);
      return;
    }
    this.dueAt(zone, this.zone(zone), dueMs);
    this.kick(zone);
  }

  /** A row of `zone` is due at `dueMs` on disk: look now, or when the time comes. */
  private dueAt(zone: string, state: ZoneState, dueMs: number): void {
    if (dueMs <= this.now()) state.diskDirty = true;
    else this.setTimer(zone, state, dueMs);
  }

  /** Something changed for `zone` (a worker asks, new mail, a slot freed): hand out work. */
  private kick(zone: string): void {
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

  /**
   * Ends a lease: rows become free again. `recorded`: its outcome is on disk (the rows are gone
   * or due later); otherwise the lease was given up and its rows are due again, on disk.
   */
  endLease(leaseId: string, recorded = false): Lease | undefined {
    const lease = this.leases.get(leaseId);
    if (!lease) return undefined;
    clearTimeout(lease.timer);
    this.leases.delete(leaseId);
    for (const row of lease.rows) this.leasedRows.delete(rowKey(row.id, row.seq));
    this.limits.release(lease.zone, lease.domain);
    const state = this.zone(lease.zone);
    if (!recorded || state.blocked) state.diskDirty = true;
    if (lease.nextDue !== undefined) this.dueAt(lease.zone, state, lease.nextDue);
    this.kick(lease.zone);
    return lease;
  }

  /**
   * Records a worker's report for a lease it holds: `apply` writes the outcome, then the lease
   * ends. A report for a lease that expired or belongs to another connection changes nothing.
   * While the outcome is being written the lease is not released, even if the worker's channel
   * closes or the lease expires meanwhile: releasing it then made the rows due before their
   * outcome was on disk, and a delivered message could be handed out again (a duplicate). That
   * holds while a failed write is tried again (Outcomes): a full disk must not hand the delivery
   * out again and again.
   */
  async settle(leaseId: string, owner: string, apply: (lease: Lease) => Promise<void>, keptSession = false): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.owner !== owner || lease.reporting) return;
    lease.reporting = true;
    let recorded = false;
    try {
      await apply(lease);
      recorded = true;
    } finally {
      lease.reporting = false;
      // the worker kept its session open for the next message: it still counts as a connection
      // to that domain until the worker's idle time is surely over (set before the lease ends,
      // so no scan sees the domain with a free connection in between)
      const idleMs = this.config.delivery.sessionIdle;
      if (keptSession && idleMs > 0 && this.leases.has(leaseId)) this.limits.hold(lease.zone, lease.domain, owner, this.now() + idleMs + HOLD_MARGIN_MS);
      this.endLease(leaseId, recorded);
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

  /** Rows leased now, per zone (metrics). */
  leasedByZone(): Record<string, number> {
    const byZone: Record<string, number> = {};
    for (const lease of this.leases.values()) byZone[lease.zone] = (byZone[lease.zone] ?? 0) + lease.rows.length;
    return byZone;
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
    if (!state) this.zones.set(zone, (state = { waiters: [], fresh: [], diskDirty: true, blocked: false, pumping: false, again: false, scannedUpTo: 0, armPending: false }));
    return state;
  }

  private async pump(zone: string, state: ZoneState): Promise<void> {
    state.pumping = true;
    try {
      for (;;) {
        state.again = false;
        // older work first: a dirty disk is scanned before fresh mail is handed out (the scan
        // also finds the fresh rows, which are then skipped as leased)
        let unread = false;
        if (state.diskDirty) {
          unread = await this.fill(zone, state);
          state.armPending = true;
        }
        // fresh mail only once the disk has nothing older for the workers (a scan that ran out of
        // waiters leaves the disk dirty; the workers that asked meanwhile get the older rows)
        if (!state.diskDirty || unread) this.serveFresh(zone, state);
        if (!state.waiters.length || this.closed) break;
        if (state.again) continue;
        if (unread) {
          // part of the due range was not read; go on from the cursor soon (not at once: a
          // backlog that cannot start, e.g. a rate-limited domain, would otherwise keep the
          // master busy reading it over and over)
          this.setTimer(zone, state, this.now() + CONTINUE_MS);
          break;
        }
        // marked during this pass (a lease given up, fresh rows a domain limit held back)
        if (state.diskDirty) continue;
        if (state.armPending) {
          // after every scan, before resting with workers waiting: when is the next row due?
          // (skipping this when a wake came during the scan left rows due a few ms after it
          // unattended until the recheck; F6 caught it)
          state.armPending = false;
          await this.armTimer(zone, state);
          // a wake that came while the timer was being armed (a lease ended, a worker asked for
          // work) must not wait for that timer: it was lost before, and a due row then sat for up
          // to a second or more (seen in F6 as a 1.1 s gap before an attempt)
          if (state.again) continue;
        }
        break;
      }
    } catch (err) {
      this.logger.error({ err, zone }, 'scheduler pass failed');
      state.diskDirty = true;
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
    /** the scan stopped before the end of the due range for lack of workers */
    let stoppedEarly = false;
    // cleared before reading: anything that dirties the disk during the scan is seen next pass
    state.diskDirty = false;
    state.scannedUpTo = now;

    for await (const [key, value] of this.store.db.iterator(range)) {
      if (++scanned > SCAN_BUDGET) {
        state.cursor = lastKey;
        unread = true;
        break;
      }
      lastKey = key;
      const { id, seq, dueMs } = decodeScheduleKey(key);
      const domain = value.toString();
      const rk = rowKey(id, seq);
      // leased rows are taken; offered ones go out from memory, in the same order
      if (this.leasedRows.has(rk) || this.offered.has(rk)) continue;
      if (id !== openId) {
        if (!free.length) {
          stoppedEarly = true;
          break;
        }
        open = new Map();
        openId = id;
      }
      const g = open.get(domain);
      if (g && g.keys.length < maxRows) {
        g.keys.push({ seq, due: dueMs });
        continue;
      }
      if (!free.length) {
        stoppedEarly = true;
        continue;
      }
      if (blockedDomains.has(domain)) continue;
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

    if (unread || stoppedEarly) state.diskDirty = true;
    state.blocked = blockedDomains.size > 0;

    for (const g of groups) {
      const i = state.waiters.indexOf(g.waiter);
      if (i < 0) {
        // its worker left during the scan: the rows stay due, the connection was never made
        this.limits.unclaim(zone, g.domain);
        state.diskDirty = true;
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

  /**
   * Hands fresh offers to waiting workers, one job per message and domain (up to the
   * per-transaction limit), without reading the disk. Rows leased meanwhile by a scan are
   * skipped; rows whose domain may not start now stay on disk for a later scan.
   */
  private serveFresh(zone: string, state: ZoneState): void {
    const maxRows = this.config.delivery.maxRecipientsPerTransaction;
    while (state.fresh.length && state.waiters.length) {
      const offer = state.fresh[0]!;
      const byDomain = new Map<string, DeliveryRow[]>();
      for (const row of offer.rows) {
        // granted meanwhile by a scan (rows given up and found again on disk), or deleted
        if (!this.offered.has(rowKey(row.id, row.seq))) continue;
        const list = byDomain.get(row.domain);
        if (list) list.push(row);
        else byDomain.set(row.domain, [row]);
      }
      const left: DeliveryRow[] = [];
      for (const [domain, rows] of byDomain) {
        for (let i = 0; i < rows.length; i += maxRows) {
          const part = rows.slice(i, i + maxRows);
          const waiter = state.waiters.length ? this.claim(zone, domain, state.waiters) : undefined;
          if (!waiter) {
            if (state.waiters.length) {
              // the domain's limits say not now: its rows wait on disk for a freed slot
              for (const r of part) this.offered.delete(rowKey(r.id, r.seq));
              state.blocked = true;
              state.diskDirty = true;
            } else {
              left.push(...part);
            }
            continue;
          }
          waiter.resolve(this.grant(zone, domain, offer.meta, part, waiter.owner));
        }
      }
      if (left.length) {
        // every worker is busy: the rest of this message waits here for the next one
        offer.rows = left;
        const bytes = offerBytes(offer.meta, left);
        this.freshBytes += bytes - offer.bytes;
        offer.bytes = bytes;
        break;
      }
      state.fresh.shift();
      this.freshBytes -= offer.bytes;
    }
  }

  /** Reads a job's metadata and rows from disk (scan path); undefined if they are gone. */
  private async makeJob(zone: string, g: { id: string; domain: string; keys: { seq: number; due: number }[] }, owner: string): Promise<Job | undefined> {
    const [metaValue, ...rowValues] = await this.store.db.getMany([keys.meta(g.id), ...g.keys.map((k) => keys.row(g.id, k.seq))]);
    const meta = metaValue === undefined ? undefined : (JSON.parse(metaValue.toString('utf8')) as MessageMeta);
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
      // leased while this read was waiting (a fresh offer of the same row): never twice
      if (this.leasedRows.has(rowKey(row.id, row.seq))) return;
      rows.push(row);
    });
    if (stale.length) {
      // index keys whose row or message is gone (deleted by an operator mid-scan): drop them
      await this.store.db.batch(stale.map((key) => ({ type: 'del' as const, key })));
    }
    if (!meta || !rows.length) {
      this.limits.unclaim(zone, g.domain);
      return undefined;
    }
    return this.grant(zone, g.domain, meta, rows, owner);
  }

  /** Leases `rows` (one message, one domain) to `owner`; the connection is already counted. */
  private grant(zone: string, domain: string, meta: MessageMeta, rows: DeliveryRow[], owner: string): Job {
    const leaseId = randomUUID();
    for (const row of rows) {
      const key = rowKey(row.id, row.seq);
      this.leasedRows.add(key);
      this.offered.delete(key);
    }
    const timer = setTimeout(() => this.expire(leaseId), this.config.queue.leaseTimeout);
    timer.unref();
    this.leases.set(leaseId, { leaseId, owner, zone, domain, id: meta.id, rows, meta, timer });
    return {
      leaseId,
      id: meta.id,
      zone,
      domain,
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

  /** queue.leaseTimeout passed without a report: cancel the attempt, then wait a little more. */
  private expire(leaseId: string): void {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.reporting) return; // settle() ends it when the write is done
    if (!this.enforcer) {
      this.logger.warn({ event: 'LEASE_EXPIRED', leaseId, id: lease.id, owner: lease.owner }, `lease ${leaseId} of ${lease.id} expired; its rows are due again`);
      this.endLease(leaseId);
      return;
    }
    const graceMs = cancelGraceMs(this.config.queue.leaseTimeout);
    this.logger.warn({ event: 'LEASE_EXPIRED', leaseId, id: lease.id, owner: lease.owner, graceMs }, `lease ${leaseId} of ${lease.id} expired; its worker is told to cancel the attempt and report within ${graceMs} ms`);
    this.enforcer.expired(lease);
    lease.timer = setTimeout(() => {
      const late = this.leases.get(leaseId);
      if (!late || late.reporting) return;
      this.logger.error({ event: 'LEASE_ABANDONED', leaseId, id: late.id, owner: late.owner }, `the worker holding lease ${leaseId} of ${late.id} did not report after it was cancelled; cutting it off (its deliveries are due again)`);
      this.enforcer!.abandoned(late.owner);
      // releaseOwner has run if the channel knew the owner; if not, the lease goes here
      if (this.leases.has(leaseId)) this.endLease(leaseId);
    }, graceMs);
    lease.timer.unref();
  }

  /** Sleeps until the next row of the zone is due (or a domain limit may have eased). */
  private async armTimer(zone: string, state: ZoneState): Promise<void> {
    const now = this.now();
    let next = now + IDLE_RECHECK_MS;
    // after what the scan read, not after now: a row that came due in between (its lease ended
    // after the scan started) is found here and looked at in 10 ms, instead of at the recheck
    for await (const key of this.store.db.keys({ ...keys.scheduleAfter(zone, state.scannedUpTo), limit: 1 })) {
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
