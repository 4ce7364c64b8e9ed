/**
 * The queue's reads, and the database handle they share with the store (QueueStore extends this
 * with every write). Nothing outside lib/queue gets the handle: callers get typed records and
 * bounded or streamed scans, decoded by the one codec (codec.ts).
 */
import { keys, decodeBodyKey, decodeRowKey, decodeSuppressionKey, PREFIX, type SuppressionKind } from './keys.js';
import { idTimePrefix } from './ids.js';
import { decodeDueEntry, decodeMeta, decodeRow, type DueEntry } from './codec.js';
import type { QueueDb } from './open.js';
import type { DeliveryRow, MessageMeta } from './types.js';

/** How many keys of each family the queue holds (for tools and tests: a full scan). */
export interface QueueCensus {
  meta: number;
  body: number;
  row: number;
  schedule: number;
  hold: number;
  suppression: number;
}

/** A pending or held row as its index holds it (s: or h:), without reading the row. */
export interface IndexedRow {
  zone: string;
  domain: string;
  id: string;
  seq: number;
  held: boolean;
}

/** Entries read from LevelDB per call by the streamed walks. */
const BATCH = 1000;

export class QueueReader {
  /** only lib/queue touches the database: this reader, the store and the body writers it makes */
  protected constructor(protected readonly db: QueueDb) {}

  /** The highest id with metadata or body chunks in the queue (a clock behind it must not reuse it). */
  protected async highestId(): Promise<string | undefined> {
    let highest: string | undefined;
    for (const prefix of [PREFIX.meta, PREFIX.body]) {
      for await (const key of this.db.keys({ ...keys.allOf(prefix), reverse: true, limit: 1 })) {
        const id = key.slice(prefix.length, prefix.length + 22);
        if (highest === undefined || id > highest) highest = id;
      }
    }
    return highest;
  }

  async getMeta(id: string): Promise<MessageMeta | undefined> {
    const value = await this.db.get(keys.meta(id));
    return value === undefined ? undefined : decodeMeta(value);
  }

  async getRows(id: string): Promise<DeliveryRow[]> {
    const rows: DeliveryRow[] = [];
    for await (const value of this.db.values(keys.rowRange(id))) rows.push(decodeRow(value));
    return rows;
  }

  /** Rows `seqs` of message `id` as stored now (undefined where a row is gone). */
  async getRowsAt(id: string, seqs: readonly number[]): Promise<(DeliveryRow | undefined)[]> {
    const values = await this.db.getMany(seqs.map((seq) => keys.row(id, seq)));
    return values.map((value) => (value === undefined ? undefined : decodeRow(value)));
  }

  /** The metadata of these messages, in one read (a message that is gone is left out). */
  async metasOf(ids: readonly string[]): Promise<Map<string, MessageMeta>> {
    const values = await this.db.getMany(ids.map((id) => keys.meta(id)));
    const out = new Map<string, MessageMeta>();
    values.forEach((value, i) => value !== undefined && out.set(ids[i]!, decodeMeta(value)));
    return out;
  }

  /** The rows at these keys, as stored now (undefined where one is gone), in one read. */
  async rowsAt(at: readonly { id: string; seq: number }[]): Promise<(DeliveryRow | undefined)[]> {
    const values = await this.db.getMany(at.map((r) => keys.row(r.id, r.seq)));
    return values.map((value) => (value === undefined ? undefined : decodeRow(value)));
  }

  /** How many rows message `id` still has. */
  async countRows(id: string): Promise<number> {
    let n = 0;
    for await (const _ of this.db.keys(keys.rowRange(id))) n++;
    return n;
  }

  /** The stored body, chunk by chunk, in order. */
  async *readBody(id: string): AsyncGenerator<Buffer> {
    for await (const value of this.db.values(keys.bodyRange(id))) yield value;
  }

  /** Body chunk `n` of message `id` (a worker pulls a body chunk by chunk). */
  readChunk(id: string, n: number): Promise<Buffer | undefined> {
    return this.db.get(keys.body(id, n));
  }

  /**
   * The zone's index entries due at or before `nowMs`, in index order (due time, then id and
   * seq). `after`: the cursor of the last entry a previous scan read (it goes on from there; a
   * cursor outside the due range starts over).
   */
  async *scanDue(zone: string, nowMs: number, after?: string): AsyncGenerator<DueEntry> {
    const due = keys.scheduleDue(zone, nowMs);
    const range = after !== undefined && after >= due.gte && after < due.lte ? { gt: after, lte: due.lte } : due;
    for await (const [key, value] of this.db.iterator(range)) yield decodeDueEntry(key, value);
  }

  /** When the zone's first row due after `afterMs` is due (undefined: none). */
  async nextDueAfter(zone: string, afterMs: number): Promise<number | undefined> {
    for await (const [key, value] of this.db.iterator({ ...keys.scheduleAfter(zone, afterMs), limit: 1 })) return decodeDueEntry(key, value).dueMs;
    return undefined;
  }

  /**
   * Messages in id order (oldest first), from just after `after`, at most `limit`: a bounded,
   * streamed scan for listings (a caller pages with the last id it got).
   */
  async *listMessages(opts: { after?: string; limit: number }): AsyncGenerator<MessageMeta> {
    const range = keys.allOf(PREFIX.meta);
    const from = opts.after === undefined ? range : { gt: keys.meta(opts.after), lt: range.lt };
    for await (const value of this.db.values({ ...from, limit: opts.limit })) yield decodeMeta(value);
  }

  /**
   * Every pending row in id order, which is creation order (ids.ts): oldest first. The caller
   * bounds the scan by stopping when it has what it needs.
   */
  async *rowsOldestFirst(): AsyncGenerator<DeliveryRow> {
    for await (const value of this.db.values(keys.allOf(PREFIX.row))) yield decodeRow(value);
  }

  /**
   * Rows in key order (id, then seq: creation order), from just after the row key `after`,
   * newest first when `reverse`, in arrays of up to `size` (each read from LevelDB in one call,
   * so a walk over a million rows is a few thousand steps, not a million). Streamed: the caller
   * stops when it has read enough.
   */
  async *rowBatches(opts: { after?: { id: string; seq: number }; reverse?: boolean; size?: number }): AsyncGenerator<DeliveryRow[]> {
    const range: { gte?: string; gt?: string; lt?: string } = { ...keys.allOf(PREFIX.row) };
    if (opts.after) {
      const at = keys.row(opts.after.id, opts.after.seq);
      if (opts.reverse) range.lt = at;
      else {
        delete range.gte;
        range.gt = at;
      }
    }
    const it = this.db.iterator({ ...range, reverse: opts.reverse === true, keys: false });
    try {
      for (;;) {
        const entries = await it.nextv(opts.size ?? BATCH);
        if (!entries.length) return;
        yield entries.map(([, value]) => decodeRow(value!));
      }
    } finally {
      await it.close();
    }
  }

  /** rowBatches, a row at a time. */
  async *rowsFrom(opts: { after?: { id: string; seq: number }; reverse?: boolean }): AsyncGenerator<DeliveryRow> {
    for await (const batch of this.rowBatches(opts)) yield* batch;
  }

  /**
   * Every pending row (s: index), then every held row (h: index), from the keys and their values
   * alone (no row is decoded), of one zone or all, in arrays of up to BATCH entries. The keys are
   * cut apart from their end, where every part has a fixed width.
   */
  async *indexBatches(opts: { pending?: boolean; held?: boolean; zone?: string } = {}): AsyncGenerator<IndexedRow[]> {
    const within = (prefix: string) => (opts.zone === undefined ? keys.allOf(prefix) : keys.allOf(`${prefix}${encodeURIComponent(opts.zone)}:`));
    // s:<zone>:<13 digits>:<22>:<4>   h:<zone>:<22>:<4>
    const families = [
      { on: opts.pending !== false, prefix: PREFIX.schedule, tail: 1 + 13 + 1 + 22 + 1 + 4, held: false },
      { on: opts.held !== false, prefix: PREFIX.hold, tail: 1 + 22 + 1 + 4, held: true },
    ];
    for (const f of families) {
      if (!f.on) continue;
      const it = this.db.iterator({ ...within(f.prefix), valueEncoding: 'utf8' });
      try {
        for (;;) {
          const entries = await it.nextv(BATCH);
          if (!entries.length) break;
          yield entries.map(([key, domain]) => {
            const zone = key.slice(2, key.length - f.tail);
            return {
              zone: zone.includes('%') ? decodeURIComponent(zone) : zone,
              id: key.slice(key.length - 27, key.length - 5),
              seq: parseInt(key.slice(key.length - 4), 16),
              domain: domain as unknown as string,
              held: f.held,
            };
          });
        }
      } finally {
        await it.close();
      }
    }
  }

  /** indexBatches, an entry at a time. */
  async *indexedRows(opts: { pending?: boolean; held?: boolean; zone?: string } = {}): AsyncGenerator<IndexedRow> {
    for await (const batch of this.indexBatches(opts)) yield* batch;
  }

  /** Every suppression list entry, as stored (suppression.ts owns the shape). */
  async *suppressionEntries(): AsyncGenerator<{ kind: SuppressionKind; value: string; data: Buffer }> {
    for await (const [key, data] of this.db.iterator(keys.allOf(PREFIX.suppression))) yield { ...decodeSuppressionKey(key), data };
  }

  /** Whether `row` has its schedule key (a consistency check for tools and tests). */
  async isScheduled(row: DeliveryRow): Promise<boolean> {
    return (await this.db.get(keys.schedule(row.zone, row.due, row.id, row.seq))) !== undefined;
  }

  /** The ids that have body chunks, each once, in order (with or without metadata); `fromMs`:
   * only ids created at or after that time (ids sort by creation time). */
  async *bodyIds(fromMs = 0): AsyncGenerator<string> {
    let last = '';
    const all = keys.allOf(PREFIX.body);
    const range = fromMs > 0 ? { ...all, gte: `${PREFIX.body}${idTimePrefix(fromMs)}` } : all;
    for await (const key of this.db.keys(range)) {
      const { id } = decodeBodyKey(key);
      if (id !== last) yield (last = id);
    }
  }

  /** Keys per family, all of them or those of message `id` (a full scan). */
  async census(id?: string): Promise<QueueCensus> {
    const counts: QueueCensus = { meta: 0, body: 0, row: 0, schedule: 0, hold: 0, suppression: 0 };
    const families = Object.entries(PREFIX) as [keyof QueueCensus, string][];
    for await (const key of this.db.keys()) {
      if (id !== undefined && !key.includes(id)) continue;
      for (const [family, prefix] of families) if (key.startsWith(prefix)) counts[family]++;
    }
    return counts;
  }

  /** Every pending row id, for tests and tools that compare the queue with a list of ids. */
  async *allRowKeys(): AsyncGenerator<{ id: string; seq: number }> {
    for await (const key of this.db.keys(keys.allOf(PREFIX.row))) yield decodeRowKey(key);
  }
}
