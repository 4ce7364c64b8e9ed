/**
 * Records what workers report: delivered and bounced rows leave the queue, deferred rows get
 * their next attempt time; when a message's last row is gone, so is its body. Bounces and
 * "delayed" notices are handed on to the bounce stage.
 *
 * Invariants:
 * - One synced batch per report. A report that calls for a notice (a DSN for bounced rows, a
 *   "delayed" DSN) is written in the same batch as that notice (NoticeWriter): a bounced row never
 *   leaves the queue without its DSN, and a crash between the two cannot lose one.
 * - A report whose write fails (a full disk, the database reopening) is written again, later and
 *   later, until it is on disk: its rows stay under their lease meanwhile, so a delivery is not
 *   tried again (and again) because its outcome could not be stored.
 * - A report for rows that no longer exist (an operator deleted the message meanwhile) changes
 *   nothing: a row is never brought back.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { RowResult } from '../channel/protocol.js';
import { logEvent } from '../log/logger.js';
import type { LogEvent } from '../log/events.js';
import { nextAttemptAt } from './backoff.js';
import { expireIfDue } from '../deliver/failure-policy.js';
import type { BatchOp } from '../store/group-commit.js';
import { QueueBatch } from './batch.js';
import type { Lease } from './scheduler.js';
import type { QueueStore } from './store.js';
import { lifetimeStart, type DeliveryRow, type MessageMeta } from './types.js';

export interface FinishedRow {
  row: DeliveryRow;
  result: RowResult;
}

/**
 * Writes the notices a report calls for, each in one synced batch with the report's own changes.
 * `prepare` decides which rows get one (the queue:bounce hooks run there, once per report); the
 * writer it returns commits `ops` together with the last notice and says whether it did (false:
 * no notice was sent after all, the caller commits `ops` alone). It throws when the notices could
 * not be stored; then nothing of `ops` was written and it may be called again.
 */
export interface NoticeWriter {
  prepare(meta: MessageMeta, bounced: FinishedRow[], delayed: FinishedRow[]): Promise<((ops: BatchOp[]) => Promise<boolean>) | undefined>;
}

/** Where finished rows go next, once they are on disk: webhooks, hooks. Never throws into the outcome path. */
export interface OutcomeListener {
  bounced?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  delayed?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  delivered?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  deferred?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
}

/** The first wait before a failed report is written again, and the longest. */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;

/** What one report changes, computed from the lease's rows at one moment. */
interface Plan {
  batch: QueueBatch;
  done: FinishedRow[];
  bounced: FinishedRow[];
  deferred: FinishedRow[];
  delayed: FinishedRow[];
  moves: [DeliveryRow, DeliveryRow][];
  messageDone: boolean;
}

export class OutcomesClosedError extends Error {}

/**
 * Counts of pending rows kept at most: an entry lives as long as its message is partly done
 * (days, for a message with a deferred recipient), so a deep queue of such messages would keep
 * one each. Past the bound the oldest entry goes; a message without one is counted again.
 */
const MAX_REMEMBERED_COUNTS = 10_000;

export class Outcomes {
  /** pending rows per message, counted once when first needed */
  private readonly remaining = new Map<string, number>();
  private closed = false;
  /** the waits of reports being written again, to end them at close */
  private readonly waits = new Set<() => void>();

  constructor(
    private readonly store: QueueStore,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly listeners: readonly OutcomeListener[],
    private readonly opts: {
      /** the DSNs; without one no notice is sent */
      notices?: NoticeWriter;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Stops writing failed reports again (the master is stopping): a report still gets its one
   * write, and one that fails rejects; its rows are due again after the restart. */
  close(): void {
    this.closed = true;
    for (const wake of this.waits) wake();
  }

  /**
   * Records one report; resolves once it is on disk, with the time the earliest row it deferred
   * is due again (undefined: none), so the scheduler wakes for it. One report at a time per message, never
   * beside a delete of it (the store's exclusive lane): the count of its remaining rows stays
   * exact, and the rows a lease holds are the rows on disk unless the message was deleted, so
   * they are not read back.
   */
  async apply(lease: Lease, results: readonly RowResult[]): Promise<number | undefined> {
    if (this.store.wasDeleted(lease.id)) return undefined;
    const now = this.now();
    const decided = this.plan(lease, results, now, lease.rows.length);
    const notices = decided.bounced.length || decided.delayed.length ? await this.opts.notices?.prepare(lease.meta, decided.bounced, decided.delayed) : undefined;
    for (let attempt = 1; ; attempt++) {
      if (this.closed && attempt > 1) throw new OutcomesClosedError(`the report on ${lease.id} was not written before the stop`);
      try {
        const nextDue = await this.store.exclusive(lease.id, () => this.record(lease, results, now, notices, attempt));
        if (attempt > 1) this.logger.warn({ event: 'OUTCOME_WRITTEN', id: lease.id, lease: lease.leaseId, attempts: attempt }, `the report on ${lease.id} is on disk after ${attempt} attempts`);
        return nextDue;
      } catch (err) {
        if (this.closed) throw err;
        const waitMs = Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS);
        if (attempt === 1 || attempt % 10 === 0) {
          this.logger.error({ event: 'OUTCOME_WRITE_FAILED', err, id: lease.id, lease: lease.leaseId, attempts: attempt, retryInMs: waitMs }, `recording the report on ${lease.id} failed; its rows stay leased and it is written again in ${waitMs} ms: ${(err as Error)?.message ?? err}`);
        }
        await this.pause(waitMs);
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.waits.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waits.add(wake);
    });
  }

  /** One try at writing a report, and what follows once it is on disk. Returns the earliest
   * next attempt of a row it deferred. */
  private async record(lease: Lease, results: readonly RowResult[], now: number, notices: ((ops: BatchOp[]) => Promise<boolean>) | undefined, attempt: number): Promise<number | undefined> {
    // rows change only by outcomes (one at a time, under the lease), by retryNow (which leaves
    // leased rows alone) and by deletes (which this waited for): what the lease holds is current
    if (this.store.wasDeleted(lease.id)) return undefined;
    let plan: Plan;
    if (attempt > 1 && (await this.landed(lease))) {
      // a write that failed may still have reached the disk (its sync failed, not its write):
      // it is not written twice; the count of what is left is read afresh next time
      plan = this.plan(lease, results, now, lease.rows.length);
      this.remaining.delete(lease.id);
    } else {
      const done = lease.rows.filter((row) => resultOf(row, results, now, this.config).outcome !== 'deferred').length;
      // a lease holding every row the message ever had knows what is left without a count
      const pending = done === 0 || lease.rows.length === lease.meta.rcptCount ? lease.rows.length : await this.pending(lease.id);
      plan = this.plan(lease, results, now, pending);
      if (!(notices && (await notices(plan.batch.ops)))) await this.store.write(plan.batch);
      if (plan.messageDone) this.remaining.delete(lease.id);
      else if (done) this.remember(lease.id, pending - done);
    }
    this.written(lease, plan);
    await this.notify(lease.meta, plan);
    let nextDue: number | undefined;
    for (const [, next] of plan.moves) nextDue = Math.min(nextDue ?? Infinity, next.due);
    return nextDue;
  }

  /** True when the lease's rows on disk are no longer the ones it holds: a report was written. */
  private async landed(lease: Lease): Promise<boolean> {
    const stored = await this.store.getRowsAt(lease.id, lease.rows.map((r) => r.seq));
    return stored.some((row, i) => row === undefined || row.attempts !== lease.rows[i]!.attempts);
  }

  /** The batch for a report and what it does to each row. */
  private plan(lease: Lease, results: readonly RowResult[], now: number, pending: number): Plan {
    const { queue } = this.config;
    const plan: Plan = { batch: new QueueBatch(), done: [], bounced: [], deferred: [], delayed: [], moves: [], messageDone: false };
    const { batch } = plan;
    for (const row of lease.rows) {
      const result = resultOf(row, results, now, this.config);
      if (result.outcome === 'deferred') {
        const attempts = row.attempts + 1;
        const next: DeliveryRow = {
          ...row,
          status: 'deferred',
          attempts,
          due: nextAttemptAt(now, attempts, lifetimeStart(row), queue.retrySchedule, queue.maxQueueTime),
          firstFailure: row.firstFailure ?? now,
          lastAttempt: now,
          lastResponse: result.response.slice(0, 1000),
          category: result.category,
          lastMx: result.mx,
          lastTls: result.tls,
          lastTlsPolicy: result.tlsPolicy,
        };
        const warn = queue.delayWarning > 0 && !row.warned && now - row.created >= queue.delayWarning;
        if (warn) next.warned = true;
        batch.moveRow(row, next);
        plan.moves.push([row, next]);
        plan.deferred.push({ row: next, result });
        if (warn) plan.delayed.push({ row: next, result });
      } else {
        batch.removeRow(row);
        plan.done.push({ row, result });
        if (result.outcome === 'bounced') plan.bounced.push({ row, result });
      }
    }
    if (plan.done.length && pending - plan.done.length <= 0) {
      plan.messageDone = true;
      // the body goes in the same batch (a range clear cost a LevelDB iterator per message)
      batch.removeMessage(lease.id, lease.meta.chunks);
    }
    return plan;
  }

  /** After the write: the counters, the log. */
  private written(lease: Lease, plan: Plan): void {
    for (const { row } of plan.done) {
      this.store.counters.add(row, -1);
      this.store.counters.processed(row.zone);
    }
    for (const [from, to] of plan.moves) this.store.counters.move(from, from.status, to.status);
    this.log(lease, plan.done, plan.deferred);
  }

  private async notify(meta: MessageMeta, plan: Plan): Promise<void> {
    const deliveredRows = plan.done.filter((d) => d.result.outcome === 'delivered');
    for (const listener of this.listeners) {
      const tell = async (what: string, rows: FinishedRow[], fn: ((m: MessageMeta, r: FinishedRow[]) => Promise<void>) | undefined) => {
        if (!rows.length || !fn) return;
        try {
          await fn.call(listener, meta, rows);
        } catch (err) {
          this.logger.error({ err, id: meta.id }, `${what} notification failed`);
        }
      };
      await tell('bounce', plan.bounced, listener.bounced);
      await tell('delay', plan.delayed, listener.delayed);
      await tell('delivered', deliveredRows, listener.delivered);
      await tell('deferred', plan.deferred, listener.deferred);
    }
  }

  /**
   * Rows of message `id` were removed outside a report (an operator deleted some): the count of
   * what is left is read afresh by the next report. Called inside the message's exclusive lane.
   */
  forgetCount(id: string): void {
    this.remaining.delete(id);
  }

  /**
   * Ends rows of a lease without an attempt and without a notice (the suppression list): they
   * leave the queue with a DROPPED line; the lease's other rows are not touched (they stay due and
   * go out under a new lease). The message goes when nothing of it is left. Returns when it is on
   * disk; written once (a failure rejects, and the rows are simply due again).
   */
  async drop(lease: Lease, seqs: ReadonlySet<number>, reason: string): Promise<void> {
    const dropped = lease.rows.filter((r) => seqs.has(r.seq));
    if (!dropped.length) return;
    await this.store.exclusive(lease.id, async () => {
      if (this.store.wasDeleted(lease.id)) return;
      const pending = dropped.length === lease.meta.rcptCount ? dropped.length : await this.pending(lease.id);
      const batch = new QueueBatch();
      for (const row of dropped) batch.removeRow(row);
      const messageDone = pending - dropped.length <= 0;
      if (messageDone) batch.removeMessage(lease.id, lease.meta.chunks);
      await this.store.write(batch);
      if (messageDone) this.remaining.delete(lease.id);
      else this.remember(lease.id, pending - dropped.length);
      for (const row of dropped) {
        this.store.counters.add(row, -1);
        this.store.counters.processed(row.zone);
        logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, zone: row.zone, recipient: row.recipient, reason });
      }
    });
  }

  private remember(id: string, pending: number): void {
    this.remaining.delete(id); // re-inserted: the most recently used is the last to go
    this.remaining.set(id, pending);
    if (this.remaining.size > MAX_REMEMBERED_COUNTS) this.remaining.delete(this.remaining.keys().next().value!);
  }

  private async pending(id: string): Promise<number> {
    let n = this.remaining.get(id);
    if (n === undefined) {
      n = await this.store.countRows(id);
      this.remember(id, n);
    }
    return n;
  }

  private log(lease: Lease, done: FinishedRow[], deferred: FinishedRow[]): void {
    for (const { row, result } of [...done, ...deferred]) {
      const event: LogEvent = result.outcome === 'delivered' ? 'DELIVERED' : result.outcome === 'bounced' ? 'BOUNCED' : 'DEFERRED';
      logEvent(this.logger, event, {
        id: row.id,
        seq: row.seq,
        zone: row.zone,
        recipient: row.recipient,
        mx: result.mx,
        localAddress: result.localAddress,
        tls: result.tls,
        ...(result.tlsPolicy ? { tlsPolicy: result.tlsPolicy } : {}),
        response: result.response.slice(0, 300),
        status: result.status,
        category: result.category,
        attempts: row.attempts,
        ...(result.durationMs !== undefined ? { durationMs: result.durationMs } : {}),
        ...(result.outcome === 'deferred' ? { next: new Date(row.due).toISOString() } : {}),
        ...(result.uncertain ? { uncertain: true } : {}),
        lease: lease.leaseId,
      });
    }
  }
}

/** A row's result as recorded: what the worker said, or a deferral when it said nothing; a
 * deferral past the queue lifetime is a bounce. */
function resultOf(row: DeliveryRow, results: readonly RowResult[], now: number, config: Config): RowResult {
  const result = results.find((r) => r.seq === row.seq) ?? { seq: row.seq, outcome: 'deferred' as const, response: 'no result reported by the worker' };
  return expireIfDue(result, lifetimeStart(row), now, config.queue.maxQueueTime);
}
