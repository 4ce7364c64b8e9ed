/**
 * Records what workers report: delivered and bounced rows leave the queue, deferred rows get
 * their next attempt time; when a message's last row is gone, so is its body. One synced batch
 * per report. Bounces and "delayed" notices are handed on to the bounce stage.
 *
 * A report for rows that no longer exist (an operator deleted the message meanwhile) changes
 * nothing: a row is never brought back.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { RowResult } from '../channel/protocol.js';
import { logEvent } from '../log/logger.js';
import { isExpired, nextAttemptAt } from './backoff.js';
import type { BatchOp } from '../store/group-commit.js';
import { keys } from './keys.js';
import type { Lease } from './scheduler.js';
import type { QueueStore } from './store.js';
import type { DeliveryRow, MessageMeta } from './types.js';

export interface FinishedRow {
  row: DeliveryRow;
  result: RowResult;
}

/** Where finished rows go next: DSNs, webhooks, hooks. Never throws into the outcome path. */
export interface OutcomeListener {
  bounced(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  delayed(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  delivered?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
  deferred?(meta: MessageMeta, rows: FinishedRow[]): Promise<void>;
}

export class Outcomes {
  /** pending rows per message, counted once when first needed */
  private readonly remaining = new Map<string, number>();

  constructor(
    private readonly store: QueueStore,
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly listeners: readonly OutcomeListener[],
    private readonly opts: {
      /** a deferred row's next attempt time, so the scheduler wakes for it */
      rescheduled?: (leaseId: string, zone: string, dueMs: number) => void;
      now?: () => number;
    } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /**
   * One report at a time per message, never beside a delete of it (the store's exclusive lane):
   * the count of its remaining rows stays exact, and the rows a lease holds are the rows on disk
   * unless the message was deleted, so they are not read back.
   */
  apply(lease: Lease, results: readonly RowResult[]): Promise<void> {
    return this.store.exclusive(lease.id, () => this.applyNow(lease, results));
  }

  private async applyNow(lease: Lease, results: readonly RowResult[]): Promise<void> {
    const now = this.now();
    const { queue } = this.config;
    const bySeq = new Map(results.map((r) => [r.seq, r]));
    // rows change only by outcomes (one at a time, under the lease), by retryNow (which leaves
    // leased rows alone) and by deletes (which this waited for): what the lease holds is current
    if (this.store.wasDeleted(lease.id)) return;
    const ops: BatchOp[] = [];
    const done: FinishedRow[] = [];
    const bounced: FinishedRow[] = [];
    const deferred: FinishedRow[] = [];
    const delayed: FinishedRow[] = [];
    const moves: [DeliveryRow, DeliveryRow][] = [];

    for (const row of lease.rows) {
      let result = bySeq.get(row.seq) ?? { seq: row.seq, outcome: 'deferred' as const, response: 'no result reported by the worker' };
      if (result.outcome === 'deferred' && isExpired(now, row.created, queue.maxQueueTime)) {
        result = { ...result, outcome: 'bounced', status: result.status?.startsWith('4') || !result.status ? '4.4.7' : result.status, response: `delivery time expired; last error: ${result.response}` };
      }
      if (result.outcome === 'deferred') {
        const attempts = row.attempts + 1;
        const next: DeliveryRow = {
          ...row,
          status: 'deferred',
          attempts,
          due: nextAttemptAt(now, attempts, row.created, queue.retrySchedule, queue.maxQueueTime),
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
        ops.push({ type: 'put', key: keys.row(row.id, row.seq), value: Buffer.from(JSON.stringify(next)) });
        ops.push({ type: 'del', key: keys.schedule(row.zone, row.due, row.id, row.seq) });
        ops.push({ type: 'put', key: keys.schedule(next.zone, next.due, next.id, next.seq), value: Buffer.from(next.domain) });
        moves.push([row, next]);
        deferred.push({ row: next, result });
        if (warn) delayed.push({ row: next, result });
      } else {
        ops.push({ type: 'del', key: keys.row(row.id, row.seq) });
        ops.push({ type: 'del', key: keys.schedule(row.zone, row.due, row.id, row.seq) });
        done.push({ row, result });
        if (result.outcome === 'bounced') bounced.push({ row, result });
      }
    }

    let messageDone = false;
    if (done.length) {
      // a lease holding every row the message ever had knows what is left without a count
      const pending = lease.rows.length === lease.meta.rcptCount ? lease.rows.length : await this.pending(lease.id);
      this.remaining.set(lease.id, pending);
      const left = pending - done.length;
      if (left <= 0) {
        messageDone = true;
        ops.push({ type: 'del', key: keys.meta(lease.id) });
        // the body goes in the same batch: its chunks are numbered 0..chunks-1 (a range clear
        // cost a LevelDB iterator per message)
        for (let n = 0; n < lease.meta.chunks; n++) ops.push({ type: 'del', key: keys.body(lease.id, n) });
      }
    }
    if (ops.length) await this.store.commit(ops);
    for (const [, next] of moves) this.opts.rescheduled?.(lease.leaseId, next.zone, next.due);

    for (const { row } of done) {
      this.store.counters.add(row, -1);
      this.store.counters.processed(row.zone);
    }
    for (const [from, to] of moves) this.store.counters.move(from, from.status, to.status);
    if (done.length) this.remaining.set(lease.id, (this.remaining.get(lease.id) ?? 0) - done.length);
    if (messageDone) this.remaining.delete(lease.id);
    this.log(lease, done, deferred);

    const meta = lease.meta;
    const deliveredRows = done.filter((d) => d.result.outcome === 'delivered');
    for (const listener of this.listeners) {
      const notify = async (what: string, rows: FinishedRow[], fn: ((m: MessageMeta, r: FinishedRow[]) => Promise<void>) | undefined) => {
        if (!rows.length || !fn) return;
        try {
          await fn.call(listener, meta, rows);
        } catch (err) {
          this.logger.error({ err, id: lease.id }, `${what} notification failed`);
        }
      };
      await notify('bounce', bounced, listener.bounced);
      await notify('delay', delayed, listener.delayed);
      await notify('delivered', deliveredRows, listener.delivered);
      await notify('deferred', deferred, listener.deferred);
    }
  }

  private async pending(id: string): Promise<number> {
    let n = this.remaining.get(id);
    if (n === undefined) {
      n = 0;
      for await (const _ of this.store.db.keys(keys.rowRange(id))) n++;
      this.remaining.set(id, n);
    }
    return n;
  }

  private log(lease: Lease, done: FinishedRow[], deferred: FinishedRow[]): void {
    for (const { row, result } of [...done, ...deferred]) {
      const event = result.outcome === 'delivered' ? 'DELIVERED' : result.outcome === 'bounced' ? 'BOUNCED' : 'DEFERRED';
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
