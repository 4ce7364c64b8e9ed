/**
 * Queue administration, Postfix's postqueue/postsuper for Sluice: list rows, and flush (retry
 * now), delete, hold and release the rows a filter selects (select.ts), one row, one message or a
 * million of them.
 *
 * Invariants:
 * - A row a worker holds under lease is never changed here: its attempt runs and its outcome
 *   decides (it is counted as `busy`). The rows being changed are pinned in the scheduler until
 *   the change is on disk, so no scan leases them from a stale index key meanwhile.
 * - Each message's change is made inside the store's exclusive lane for that message, from its
 *   rows as stored at that moment (the walk that found them may be stale), so it never
 *   interleaves with an outcome being recorded or a delete.
 * - A held row has no schedule key (batch.ts): no worker gets it and its lifetime does not run;
 *   release adds the time it was held to `heldMs` and makes it due now.
 * - Counters move with every row changed, after its write.
 * - A bulk operation works a window of messages at a time (their writes share fsyncs through the
 *   group commit) and reports progress after each window; the walk is streamed, so memory stays
 *   bounded and the event loop is never held for long, whatever the size of the queue.
 */
import type { Logger } from 'pino';
import { logEvent } from '../log/logger.js';
import { QueueBatch } from './batch.js';
import type { Scheduler } from './scheduler.js';
import { indexable, matches, selectIndexed, selectRows, type RowFilter, type SelectedRow } from './select.js';
import type { QueueStore } from './store.js';
import type { DeliveryRow, MessageMeta } from './types.js';

export type QueueAction = 'flush' | 'delete' | 'hold' | 'release';

export interface ActionResult {
  action: QueueAction;
  dryRun: boolean;
  /** rows the filter selected that the action applies to */
  matched: number;
  /** rows changed (with dryRun: that would be changed) */
  changed: number;
  /** rows left alone because a worker is delivering them right now */
  busy: number;
  /** messages that had selected rows */
  messages: number;
}

export interface ActionOptions {
  dryRun?: boolean;
  /** after every window of messages */
  onProgress?: (so: ActionResult) => void;
  /** stops the walk (the client went away); what was done stays done */
  signal?: AbortSignal;
  /** who asked, for the log */
  by?: string;
}

export interface AdminDeps {
  store: QueueStore;
  scheduler: Scheduler;
  logger: Logger;
  /** rows of a message were removed outside a report: the outcome path recounts what is left */
  rowsRemoved?: (id: string) => void;
  /** rows an operator deleted (the queue:release hook) */
  deleted?: (rows: readonly DeliveryRow[]) => Promise<void>;
  now?: () => number;
}

/** Messages per window of a bulk operation: their writes go out together. */
const WINDOW_MESSAGES = 200;
/** Rows per window, whatever the number of messages. */
const WINDOW_ROWS = 2000;

/** Which rows an action can change at all (the others are not counted as matched). */
function applies(action: QueueAction, row: DeliveryRow, nowMs: number): boolean {
  switch (action) {
    case 'flush':
      return row.status !== 'held' && row.due > nowMs;
    case 'hold':
      return row.status !== 'held';
    case 'release':
      return row.status === 'held';
    case 'delete':
      return true;
  }
}

export class QueueAdmin {
  constructor(private readonly deps: AdminDeps) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Applies `action` to every row `filter` selects. */
  async run(action: QueueAction, filter: RowFilter, opts: ActionOptions = {}): Promise<ActionResult> {
    const nowMs = this.now();
    const result: ActionResult = { action, dryRun: opts.dryRun === true, matched: 0, changed: 0, busy: 0, messages: 0 };
    const zones = new Set<string>();
    let window: SelectedRow[][] = [];
    let rows = 0;
    const flush = async () => {
      await Promise.all(window.map((group) => this.applyToMessage(action, filter, group, nowMs, result, zones, opts)));
      window = [];
      rows = 0;
      opts.onProgress?.({ ...result });
    };
    let group: SelectedRow[] = [];
    // a zone or domain is found through the index; everything else walks the rows in key order
    const walk = indexable(filter) ? selectIndexed(this.deps.store, filter, nowMs) : selectRows(this.deps.store, filter, { nowMs });
    let lastId: string | undefined;
    for await (const sel of walk) {
      if (opts.signal?.aborted) break;
      if (!applies(action, sel.row, nowMs)) continue;
      if (opts.dryRun) {
        // a count from the walk itself: nothing is written, so nothing is re-read or pinned
        result.matched++;
        if (this.deps.scheduler.isLeased(sel.row.id, sel.row.seq)) result.busy++;
        else result.changed++;
        if (sel.row.id !== lastId) result.messages++;
        lastId = sel.row.id;
        if (result.matched % (WINDOW_ROWS * 10) === 0) opts.onProgress?.({ ...result });
        continue;
      }
      if (group.length && group[0]!.row.id !== sel.row.id) {
        window.push(group);
        group = [];
        if (window.length >= WINDOW_MESSAGES || rows >= WINDOW_ROWS) await flush();
      }
      group.push(sel);
      rows++;
    }
    if (group.length) window.push(group);
    if (window.length || opts.dryRun) await flush();
    for (const zone of zones) this.deps.scheduler.wake(zone);
    if (!opts.dryRun && result.changed && (filter.id === undefined || result.messages > 1)) {
      this.deps.logger.info({ event: 'QUEUE_OPERATION', filter, by: opts.by, ...result }, `${action}: ${result.changed} of ${result.matched} rows in ${result.messages} messages${result.busy ? ` (${result.busy} being delivered, left alone)` : ''}`);
    }
    return result;
  }

  /** One message's selected rows: re-read as stored now, pinned, changed in one batch. */
  private async applyToMessage(action: QueueAction, filter: RowFilter, group: SelectedRow[], nowMs: number, result: ActionResult, zones: Set<string>, opts: ActionOptions): Promise<void> {
    const { store, scheduler } = this.deps;
    const id = group[0]!.row.id;
    const meta = group[0]!.meta;
    let wholeMessage = false;
    let removed: DeliveryRow[] = [];
    await store.exclusive(id, async () => {
      const all = action === 'delete' ? await store.getRows(id) : undefined;
      const stored = all ?? (await store.getRowsAt(id, group.map((s) => s.row.seq))).filter((r): r is DeliveryRow => r !== undefined);
      const picked = stored.filter((row) => (all ? group.some((s) => s.row.seq === row.seq) : true) && matches(filter, row, nowMs, meta) && applies(action, row, nowMs));
      if (!picked.length) return;
      result.messages++;
      result.matched += picked.length;
      const free = scheduler.pin(picked);
      result.busy += picked.length - free.length;
      try {
        if (!free.length) return;
        if (all && free.length === all.length) {
          // every row of the message goes: the message goes, by the store's own delete (below,
          // outside this lane, which that delete takes itself)
          wholeMessage = true;
          return;
        }
        await this.change(action, id, free, nowMs, meta, opts.by);
        result.changed += free.length;
        if (action === 'delete') removed = free;
        for (const row of free) zones.add(row.zone);
      } finally {
        scheduler.unpin(free);
      }
    });
    if (wholeMessage) {
      const rows = await store.deleteMessage(id);
      if (rows) {
        result.changed += rows.length;
        logEvent(this.deps.logger, 'DELETED', { id, by: opts.by ?? 'api', rows: rows.length });
        removed = rows;
      }
    }
    if (removed.length) await this.deps.deleted?.(removed);
  }

  /** Writes one message's change; the caller holds its lane and has pinned `rows`. */
  private async change(action: QueueAction, id: string, rows: DeliveryRow[], nowMs: number, meta: MessageMeta | undefined, by: string | undefined): Promise<void> {
    const { store } = this.deps;
    const batch = new QueueBatch();
    const moved: [DeliveryRow, DeliveryRow][] = [];
    for (const row of rows) {
      if (action === 'delete') {
        batch.removeRow(row);
        continue;
      }
      const next = changed(action, row, nowMs);
      if (action === 'hold') batch.holdRow(row, next);
      else if (action === 'release') batch.releaseRow(row, next);
      else batch.moveRow(row, next);
      moved.push([row, next]);
    }
    await store.write(batch);
    if (action === 'delete') {
      for (const row of rows) store.counters.add(row, -1);
      this.deps.rowsRemoved?.(id);
      logEvent(this.deps.logger, 'DELETED', { id, seq: rows.map((r) => r.seq), by: by ?? 'api', rows: rows.length });
      return;
    }
    for (const [from, to] of moved) store.counters.move(from, from.status, to.status);
    const fields = { id, seq: rows.map((r) => r.seq), by: by ?? 'api', ...(meta ? { from: meta.from } : {}) };
    if (action === 'hold') logEvent(this.deps.logger, 'HELD', fields);
    else if (action === 'release') logEvent(this.deps.logger, 'RELEASED', fields);
  }
}

/** The row as an action leaves it. */
function changed(action: Exclude<QueueAction, 'delete'>, row: DeliveryRow, nowMs: number): DeliveryRow {
  if (action === 'hold') return { ...row, status: 'held', heldAt: nowMs };
  if (action === 'flush') return { ...row, due: nowMs };
  const { heldAt, ...rest } = row;
  return {
    ...rest,
    status: row.attempts > 0 ? 'deferred' : 'queued',
    due: nowMs,
    heldMs: (row.heldMs ?? 0) + Math.max(0, nowMs - (heldAt ?? nowMs)),
  };
}
