/**
 * The scheduler: hands due deliveries to workers under lease, and keeps the zone's limits. Its
 * parts, each with one job:
 *   - the lease table, with the rows an operator's change pins (leases.ts);
 *   - the fresh lane (fresh-lane.ts) and when it is served (fresh-serving.ts);
 *   - the rows found on disk (disk-serving.ts), one pass of the due index at a time (due-scan.ts);
 *   - the per-domain limits (domain-limits.ts);
 *   - each zone's wake-up (zone-timer.ts).
 * This file is the per-zone pump that drives them, over one explicit state per zone
 * (zone-state.ts); a granted lease becomes a job (job.ts).
 *
 * - A worker's `fetch` waits (long poll) until a delivery of its zone is due and allowed.
 * - A job is one message to one domain, up to the per-transaction limit.
 * - Limits per zone and domain: connections at once (connectionsPerDomain) and messages per minute
 *   (domainRatePerMinute), shared by every process of the zone because only the master decides.
 *
 * Fresh mail from memory, end to end: ingest (lib/accept/ingest.ts) streams the body through a
 * BodyWriter (body-writer.ts), which keeps the chunks of a small body (`retained`); after the
 * commit, ingest's onQueued hands the chunks to FreshBodies (fresh-bodies.ts) and the metadata
 * and rows, as written, to `offer` here, which puts the due rows in the fresh lane. A waiting
 * worker gets them from the lane without a LevelDB read; Dispatch (dispatch.ts) sends the whole
 * body along with the job from FreshBodies (the channel's prefetch), and drops it once the first
 * attempt is reported: a retry reads the body from disk.
 *
 * Everything else (retries coming due, rows a worker gave back, mail accepted while every worker
 * was busy, whatever was queued before a restart) is found by scanning the zone's index on disk.
 * A scan runs only when the disk may hold due rows that nobody holds (`dirty`): at 2 KB, scanning
 * on every pass was most of the master's delivery-side cost. An offer that does not fit in the
 * lane, or rows it cannot start now (domain limits), are left to the scan.
 *
 * Invariants: a row is leased by at most one worker at a time, and leases never make a delivery
 * disappear (leases.ts); only a reported outcome, written under its lease (`settle`), does.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Job } from '../channel/protocol.js';
import type { QueueStore } from './store.js';
import type { DeliveryRow, MessageMeta } from './types.js';
import { DomainLimits } from './domain-limits.js';
import { systemClock, type Clock } from './clock.js';
import { LeaseTable, rowKey, type Lease, type LeaseEnforcer } from './leases.js';
import { FreshLane } from './fresh-lane.js';
import { FreshServing } from './fresh-serving.js';
import { DiskServing } from './disk-serving.js';
import { jobOf } from './job.js';
import { changedMeanwhile, newZoneState, type ServingDeps, type Waiter, type ZoneState } from './zone-state.js';
import { ZoneTimer } from './zone-timer.js';

export type { Lease, LeaseEnforcer } from './leases.js';

/** A pass that stopped at its budget with workers still waiting goes on this soon, from there. */
const CONTINUE_MS = 100;
/** A pass that failed (a read error) is tried again this soon. */
const FAILED_PASS_RETRY_MS = 1000;
/** A worker closes an idle session at sessionIdle; the master counts it a little longer. */
const HOLD_MARGIN_MS = 1000;

export class SchedulerClosedError extends Error {}

export class Scheduler {
  private readonly leases: LeaseTable;
  private readonly fresh = new FreshLane();
  private readonly freshServing: FreshServing;
  private readonly diskServing: DiskServing;
  private readonly zones = new Map<string, ZoneState>();
  readonly limits: DomainLimits;
  private readonly clock: Clock;
  private closed = false;

  constructor(
    private readonly store: QueueStore,
    /** read per use, so a reload's limits apply at once (reconfigure); the lease timeout is fixed at start */
    private config: Config,
    private readonly logger: Logger,
    /** the time and timers (a test moves its own clock); a bare function replaces the time only */
    clock: Clock | (() => number) = systemClock,
    /** without one (tests of the scheduler alone) an expired lease's rows are simply due again */
    enforcer?: LeaseEnforcer,
  ) {
    this.clock = typeof clock === 'function' ? { now: clock, after: systemClock.after } : clock;
    this.limits = new DomainLimits(config, () => this.clock.now());
    this.leases = new LeaseTable({ leaseTimeoutMs: config.queue.leaseTimeout, clock: this.clock, logger, enforcer, end: (leaseId) => this.endLease(leaseId) });
    const serving: ServingDeps = {
      clock: this.clock,
      maxRows: () => this.config.delivery.maxRecipientsPerTransaction,
      claim: (zone, domain, free) => this.limits.claim(zone, domain, free),
      grant: (zone, domain, meta, rows, owner) => this.grant(zone, domain, meta, rows, owner),
    };
    this.freshServing = new FreshServing({ ...serving, lane: this.fresh });
    this.diskServing = new DiskServing({
      ...serving,
      store,
      isTaken: (id, seq) => this.leases.isTaken(id, seq),
      isOffered: (id, seq) => this.fresh.isOffered(rowKey(id, seq)),
      unclaim: (zone, domain) => this.limits.unclaim(zone, domain),
    });
  }

  /** A reloaded config (only its live keys differ: see config/reload-plan.ts). */
  reconfigure(config: Config): void {
    this.config = config;
    this.limits.reconfigure(config);
  }

  private now(): number {
    return this.clock.now();
  }

  /** Waits for the next due delivery of `zone` and leases it to `owner`. */
  fetch(owner: string, zone: string): Promise<Job> {
    if (this.closed) return Promise.reject(new SchedulerClosedError('scheduler closed'));
    return new Promise((resolve, reject) => {
      const state = this.zone(zone);
      state.waiters.push({ owner, resolve, reject });
      // rows held back by a domain limit may go to this worker: it may keep an idle session to
      // that domain, which needs no new connection
      if (state.disk.blocked) state.disk.dirty = true;
      this.kick(zone);
    });
  }

  /** Rows of `zone` may have become due on disk (a retry, a requeue): look for work there. */
  wake(zone: string): void {
    this.zone(zone).disk.dirty = true;
    this.kick(zone);
  }

  /**
   * A message was just committed: its due rows may go to waiting workers of their zones straight
   * from memory. Rows due later (a future Date header), or an offer past the lane's bounds, are
   * left to the disk scan.
   */
  offer(meta: MessageMeta, rows: DeliveryRow[]): void {
    const now = this.now();
    for (const zone of new Set(rows.map((r) => r.zone))) {
      const state = this.zone(zone);
      const mine = rows.filter((r) => r.zone === zone);
      const due = mine.filter((r) => r.due <= now);
      if (due.length < mine.length) state.disk.dirty = true; // the later ones come due by the timer
      if (due.length && !this.fresh.add(zone, meta, due, now)) state.disk.dirty = true;
      this.kick(zone);
    }
  }

  /** A message was deleted: an offer of it must not be handed out. */
  forget(id: string): void {
    this.fresh.forget(id);
  }

  /** A row of `zone` is due at `dueMs` on disk: look now, or when the time comes. */
  private dueAt(state: ZoneState, dueMs: number): void {
    if (dueMs <= this.now()) state.disk.dirty = true;
    else state.timer.wakeAt(dueMs);
  }

  /** Something changed for `zone` (a worker asks, new mail, a slot freed): hand out work. */
  private kick(zone: string): void {
    const state = this.zone(zone);
    if (!state.waiters.length) return;
    if (state.run !== 'idle') {
      state.run = 'again';
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
    const lease = this.leases.remove(leaseId);
    if (!lease) return undefined;
    this.limits.release(lease.zone, lease.domain);
    const state = this.zone(lease.zone);
    if (!recorded || state.disk.blocked) state.disk.dirty = true;
    if (lease.nextDue !== undefined) this.dueAt(state, lease.nextDue);
    this.kick(lease.zone);
    return lease;
  }

  /**
   * Records a worker's report for a lease it holds: `apply` writes the outcome and says when the
   * earliest row it deferred is due again (the scheduler wakes for it), then the lease ends. A
   * report for a lease that expired or belongs to another connection changes nothing.
   * While the outcome is being written the lease is not released, even if the worker's channel
   * closes or the lease expires meanwhile: releasing it then would make the rows due before their
   * outcome was on disk, and a delivered message could be handed out again (a duplicate). That
   * holds while a failed write is tried again (Outcomes): a full disk must not hand the delivery
   * out again and again.
   */
  async settle(leaseId: string, owner: string, apply: (lease: Lease) => Promise<number | undefined>, keptSession = false): Promise<void> {
    const lease = this.leases.get(leaseId);
    if (!lease || lease.owner !== owner || lease.reporting) return;
    lease.reporting = true;
    let recorded = false;
    try {
      const nextDue = await apply(lease);
      if (nextDue !== undefined) lease.nextDue = Math.min(lease.nextDue ?? Infinity, nextDue);
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

  /**
   * A worker replaced by a reload finishes what it holds but gets nothing more: its waiting
   * fetches are withdrawn, never answered (it is stopping and would not start a job; the
   * master takes it back only when the worker's channel closes, a delay for that mail).
   */
  withdraw(owner: string): void {
    for (const state of this.zones.values()) state.waiters = state.waiters.filter((w) => w.owner !== owner);
  }

  /** A worker's channel closed: everything it held or waited for is released at once. Returns
   * the ids of the messages whose deliveries are due again. */
  releaseOwner(owner: string): string[] {
    const released: string[] = [];
    for (const lease of this.leases.releasableOf(owner)) {
      this.endLease(lease.leaseId);
      released.push(lease.id);
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
    return this.leases.rowCount;
  }

  /** Rows leased now, per zone (metrics). */
  leasedByZone(): Record<string, number> {
    return this.leases.rowsByZone();
  }

  leasesOf(owner: string): number {
    return this.leases.countOf(owner);
  }

  isLeased(id: string, seq: number): boolean {
    return this.leases.isLeased(id, seq);
  }

  /**
   * Takes the rows of `rows` that no worker holds out of the scheduler's hands until `unpin`, while
   * an operator's change to them is written (leases.ts); returns them. Their message's fresh
   * offers are withdrawn (the rows that stay pending are found on disk by the next scan).
   */
  pin<R extends { id: string; seq: number }>(rows: readonly R[]): R[] {
    const free = this.leases.pin(rows);
    for (const id of new Set(free.map((r) => r.id))) this.fresh.forget(id);
    return free;
  }

  unpin(rows: readonly { id: string; seq: number }[]): void {
    this.leases.unpin(rows);
  }

  close(): void {
    this.closed = true;
    for (const state of this.zones.values()) {
      state.timer.stop();
      for (const w of state.waiters.splice(0)) w.reject(new SchedulerClosedError('scheduler closed'));
    }
    this.leases.close();
  }

  private zone(zone: string): ZoneState {
    let state = this.zones.get(zone);
    if (!state) this.zones.set(zone, (state = newZoneState(new ZoneTimer(this.clock, () => this.wake(zone)))));
    return state;
  }

  private async pump(zone: string, state: ZoneState): Promise<void> {
    state.run = 'running';
    try {
      for (;;) {
        state.run = 'running';
        // older work first: a dirty disk is scanned before fresh mail is handed out (the scan
        // also finds the fresh rows, which are then skipped as offered)
        let unread = false;
        if (state.disk.dirty) {
          this.freshServing.serveWaited(zone, state);
          unread = await this.diskServing.serve(zone, state);
          state.disk.armPending = true;
        }
        // fresh mail only once the disk has nothing older for the workers (a scan that ran out of
        // waiters leaves the disk dirty; the workers that asked meanwhile get the older rows)
        if (!state.disk.dirty || unread) this.freshServing.serve(zone, state);
        if (!state.waiters.length || this.closed) break;
        if (changedMeanwhile(state)) continue;
        if (unread) {
          // part of the due range was not read; go on from the cursor soon (not at once: a
          // backlog that cannot start, e.g. a rate-limited domain, would otherwise keep the
          // master busy reading it over and over)
          state.timer.wakeIn(CONTINUE_MS);
          break;
        }
        // marked during this pass (a lease given up, fresh rows a domain limit held back)
        if (state.disk.dirty) continue;
        if (state.disk.armPending) {
          // after every scan, before resting with workers waiting: when is the next row due?
          // (without this, rows due a few ms after a scan that a wake interrupted sat until the
          // idle recheck)
          state.disk.armPending = false;
          await state.timer.arm(
            // after what the scan read, not after now: a row that came due in between (its lease
            // ended after the scan started) is found here and looked at soon, not at the recheck
            () => this.store.nextDueAfter(zone, state.disk.scannedUpTo),
            () => this.limits.nextFreeAt(zone),
          );
          // a wake that came while the timer was being armed (a lease ended, a worker asked for
          // work) must not wait for that timer
          if (changedMeanwhile(state)) continue;
        }
        break;
      }
    } catch (err) {
      this.logger.error({ err, zone }, 'scheduler pass failed');
      state.disk.dirty = true;
      state.timer.wakeIn(FAILED_PASS_RETRY_MS);
    } finally {
      state.run = 'idle';
    }
  }

  /** Leases `rows` (one message, one domain) to `owner`; the connection is already counted. */
  private grant(zone: string, domain: string, meta: MessageMeta, rows: DeliveryRow[], owner: string): Job {
    const lease = this.leases.grant(owner, zone, domain, meta, rows);
    this.fresh.taken(rows);
    return jobOf(lease);
  }
}
