/**
 * Which delivery rows an operator means: a filter (zone, recipient domain, sender, status, age,
 * reply class, one message or one row) and a streamed walk of the rows that match it, oldest or
 * newest first, from a cursor. Listings read one bounded page of it; bulk operations (admin.ts)
 * read all of it, a window at a time. Nothing here holds more than the row being looked at.
 *
 * Rows are keyed by message id and ids sort by creation time (ids.ts), so an age window becomes
 * a range of keys: the walk starts at the window's edge and stops at its other edge instead of
 * reading the whole queue. Walks read a thousand entries per call and let the event loop turn
 * between two such batches, so a walk over a million rows never holds it for long.
 */
import { queueIdTime } from './ids.js';
import { turn, type QueueReader } from './reader.js';
import type { DeliveryRow, MessageMeta, RowStatus } from './types.js';

export interface RowFilter {
  /** one message */
  id?: string;
  /** one row of it */
  seq?: number;
  zone?: string;
  /** recipient domain, lower case */
  domain?: string;
  /** envelope sender: an address, `@domain` for every sender of a domain, or `<>` for the null sender */
  sender?: string;
  status?: RowStatus;
  /** rows at least this old (ms since they were queued) */
  minAgeMs?: number;
  /** rows at most this old */
  maxAgeMs?: number;
  /** the class of the last reply (greylist, blocklist, mailbox-full, …; see lib/bounce/categories.ts) */
  category?: string;
}

export interface SelectedRow {
  row: DeliveryRow;
  /** the message's metadata, when the walk was asked to read it */
  meta?: MessageMeta;
}

/** Where a listing goes on from: the last row it read, as `id.seq`. */
export const cursorOf = (row: Pick<DeliveryRow, 'id' | 'seq'>): string => `${row.id}.${row.seq.toString(16).padStart(3, '0')}`;

export function parseCursor(cursor: string): { id: string; seq: number } | undefined {
  const m = /^([0-9a-f]{22})\.([0-9a-f]{1,4})$/.exec(cursor);
  return m ? { id: m[1]!, seq: parseInt(m[2]!, 16) } : undefined;
}

/** The first id at or after `ms` (ids start with 12 hex digits of their time). */
const idAt = (ms: number): string => Math.max(0, Math.floor(ms)).toString(16).padStart(12, '0') + '0'.repeat(10);

export function matches(filter: RowFilter, row: DeliveryRow, nowMs: number, meta?: MessageMeta): boolean {
  if (filter.id !== undefined && row.id !== filter.id) return false;
  if (filter.seq !== undefined && row.seq !== filter.seq) return false;
  if (filter.zone !== undefined && row.zone !== filter.zone) return false;
  if (filter.domain !== undefined && row.domain !== filter.domain) return false;
  if (filter.status !== undefined && row.status !== filter.status) return false;
  if (filter.category !== undefined && row.category !== filter.category) return false;
  const age = nowMs - row.created;
  if (filter.minAgeMs !== undefined && age < filter.minAgeMs) return false;
  if (filter.maxAgeMs !== undefined && age > filter.maxAgeMs) return false;
  if (filter.sender !== undefined && !(meta && senderMatches(filter.sender, meta.from))) return false;
  return true;
}

function senderMatches(wanted: string, from: string): boolean {
  const w = wanted.toLowerCase();
  const f = from.toLowerCase();
  if (w === '<>') return f === '';
  if (w.startsWith('@')) return f.endsWith(w);
  return f === w;
}

export interface WalkOptions {
  newestFirst?: boolean;
  /** go on after this row (a cursor's row) */
  after?: { id: string; seq: number };
  /** read each row's metadata too (for the sender, or to show it) */
  withMeta?: boolean;
  nowMs: number;
  /** told of every row read, matching or not */
  onRead?: (row: DeliveryRow) => void;
  /** stop after reading this many rows, matching or not (a listing page's bound) */
  maxRead?: number;
}

/** Every row matching `filter`, streamed in key order (creation order), or newest first. */
export async function* selectRows(reader: QueueReader, filter: RowFilter, opts: WalkOptions): AsyncGenerator<SelectedRow> {
  const reverse = opts.newestFirst === true;
  const withMeta = opts.withMeta === true || filter.sender !== undefined;
  if (filter.id !== undefined) {
    yield* oneMessage(reader, filter, opts, withMeta);
    return;
  }
  // the age window as a key range: rows created in [lo, hi]
  const lo = filter.maxAgeMs === undefined ? undefined : opts.nowMs - filter.maxAgeMs;
  const hi = filter.minAgeMs === undefined ? undefined : opts.nowMs - filter.minAgeMs;
  let after = opts.after;
  if (!reverse && lo !== undefined && (after === undefined || after.id < idAt(lo))) after = { id: idAt(lo), seq: 0 };
  if (reverse && hi !== undefined && (after === undefined || after.id >= idAt(hi + 1))) after = { id: idAt(hi + 1), seq: 0 };
  let read = 0;
  for await (const batch of reader.rowBatches({ after, reverse })) {
    // the metadata of a batch's messages in one read
    const metas = withMeta ? await reader.metasOf([...new Set(batch.map((r) => r.id))]) : undefined;
    for (const row of batch) {
      if (opts.maxRead !== undefined && read >= opts.maxRead) return;
      read++;
      opts.onRead?.(row);
      const t = queueIdTime(row.id);
      if (!reverse && hi !== undefined && t > hi) return;
      if (reverse && lo !== undefined && t < lo) return;
      const meta = metas?.get(row.id);
      if (matches(filter, row, opts.nowMs, meta)) yield { row, meta };
    }
    await turn();
  }
}

/** Lets timers and I/O run between two batches of a long walk. */
/** Rows read per lookup by the index walk. */
const LOOKUP_BATCH = 500;

/**
 * Every row matching `filter`, in no particular order, found through the index keys (s: and h:,
 * which hold each row's zone and domain) when the filter names a zone or a domain: only the rows
 * of that zone or domain are read, not the whole queue. For bulk actions (an order does not
 * matter); the sender is not in the index, so a filter with one takes selectRows.
 */
export async function* selectIndexed(reader: QueueReader, filter: RowFilter, nowMs: number): AsyncGenerator<SelectedRow> {
  const pending = filter.status !== 'held';
  const held = filter.status === undefined || filter.status === 'held';
  let wanted: { id: string; seq: number }[] = [];
  const lookup = async function* (): AsyncGenerator<SelectedRow> {
    const rows = await reader.rowsAt(wanted);
    wanted = [];
    for (const row of rows) if (row && matches(filter, row, nowMs)) yield { row };
  };
  for await (const batch of reader.indexBatches({ pending, held, zone: filter.zone })) {
    for (const e of batch) {
      if (filter.domain !== undefined && e.domain !== filter.domain) continue;
      wanted.push(e);
      if (wanted.length >= LOOKUP_BATCH) yield* lookup();
    }
    await turn();
  }
  if (wanted.length) yield* lookup();
}

/** Whether selectIndexed is the cheaper walk for `filter`. */
export const indexable = (filter: RowFilter): boolean => filter.id === undefined && filter.sender === undefined && (filter.zone !== undefined || filter.domain !== undefined);

async function* oneMessage(reader: QueueReader, filter: RowFilter, opts: WalkOptions, withMeta: boolean): AsyncGenerator<SelectedRow> {
  const meta = withMeta ? await reader.getMeta(filter.id!) : undefined;
  const rows = await reader.getRows(filter.id!);
  if (opts.newestFirst) rows.reverse();
  for (const row of rows) {
    if (opts.after && (opts.newestFirst ? row.seq >= opts.after.seq : row.seq <= opts.after.seq) && opts.after.id === row.id) continue;
    opts.onRead?.(row);
    if (matches(filter, row, opts.nowMs, meta)) yield { row, meta };
  }
}
