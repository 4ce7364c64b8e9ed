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

/** Which index entries a walk reads: pending rows, held rows or both (default), of one zone or all. */
export interface IndexScope {
  pending?: boolean;
  held?: boolean;
  zone?: string;
}

/**
 * The index families a walk reads, each with the width of the key's fixed tail after the zone
 * (keys are cut apart from their end, where every part has a fixed width):
 *   s:<zone>:<13 digits>:<22>:<4>   h:<zone>:<22>:<4>
 */
function indexFamilies(opts: IndexScope): { range: { gte: string; lt: string }; tail: number; held: boolean }[] {
  const within = (prefix: string) => (opts.zone === undefined ? keys.allOf(prefix) : keys.allOf(`${prefix}${encodeURIComponent(opts.zone)}:`));
  const families = [];
  if (opts.pending !== false) families.push({ range: within(PREFIX.schedule), tail: 1 + 13 + 1 + 22 + 1 + 4, held: false });
  if (opts.held !== false) families.push({ range: within(PREFIX.hold), tail: 1 + 22 + 1 + 4, held: true });
  return families;
}

const decodeZone = (raw: string): string => (raw.includes('%') ? decodeURIComponent(raw) : raw);
/** an s: or h: key ends with the 22-character id, ':' and the 4-digit seq; counted from its end: */
const SEQ_FROM_END = 1 + 4;
const ID_FROM_END = 22 + SEQ_FROM_END;
const idOfIndexKey = (key: string): string => key.slice(key.length - ID_FROM_END, key.length - SEQ_FROM_END);

/** Lets the event loop turn (timers, sockets) between two batches of a long walk. */
export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

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
   * alone (no row is decoded), of one zone or all, in arrays of up to BATCH entries.
   */
  async *indexBatches(opts: IndexScope = {}): AsyncGenerator<IndexedRow[]> {
    for (const family of indexFamilies(opts)) {
      const it = this.db.iterator<string, string>({ ...family.range, valueEncoding: 'utf8' });
      try {
        for (;;) {
          const entries = await it.nextv(BATCH);
          if (!entries.length) break;
          yield entries.map(([key, domain]) => {
            const zone = key.slice(2, key.length - family.tail);
            return { zone: decodeZone(zone), id: idOfIndexKey(key), seq: parseInt(key.slice(key.length - 4), 16), domain: domain!, held: family.held };
          });
        }
      } finally {
        await it.close();
      }
    }
  }

  /**
   * What indexBatches reads, handed to `visit` an entry at a time with no object per entry, for
   * walks that only count (the queue's summary). The next batch is read by LevelDB's thread while
   * `visit` works on this one, and the event loop turns between two batches, so the walk never
   * holds it for long.
   */
  async scanIndex(opts: IndexScope, visit: (zone: string, domain: string, queuedMs: number, held: boolean) => void): Promise<void> {
    // consecutive entries mostly share their zone, and the rows of one message their id's time
    let zoneRaw = '';
    let zone = '';
    let timeHex = '';
    let queuedMs = 0;
    for (const family of indexFamilies(opts)) {
      const it = this.db.iterator<string, string>({ ...family.range, valueEncoding: 'utf8' });
      try {
        let reading = it.nextv(BATCH);
        for (;;) {
          const entries = await reading;
          if (!entries.length) break;
          reading = it.nextv(BATCH);
          for (const [key, domain] of entries) {
            const raw = key.slice(2, key.length - family.tail);
            if (raw !== zoneRaw) zone = decodeZone((zoneRaw = raw));
            // an id starts with 12 hex digits of its time (ids.ts)
            const idAt = key.length - ID_FROM_END;
            const hex = key.slice(idAt, idAt + 12);
            if (hex !== timeHex) queuedMs = parseInt((timeHex = hex), 16);
            visit(zone, domain!, queuedMs, family.held);
          }
          await turn();
        }
      } finally {
        await it.close();
      }
    }
  }

  /** indexBatches, an entry at a time. */
  async *indexedRows(opts: IndexScope = {}): AsyncGenerator<IndexedRow> {
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
    for await (const key of this.keysFrom(PREFIX.body, fromMs)) {
      const { id } = decodeBodyKey(key);
      if (id !== last) yield (last = id);
    }
  }

  /**
   * The ids that have body chunks but no metadata, in order, from ids created at `fromMs` on: what
   * an interrupted ingest left, or an ingest still running (the caller knows those). A walk over
   * the body keys beside one over the metadata keys, both in id order: a queue of a million
   * messages costs two sequential reads, not a lookup per message.
   */
  async *bodiesWithoutMeta(fromMs = 0): AsyncGenerator<string> {
    const metas = this.keysFrom(PREFIX.meta, fromMs)[Symbol.asyncIterator]();
    try {
      let meta = '';
      let more = true;
      for await (const id of this.bodyIds(fromMs)) {
        while (more && meta < id) {
          const next = await metas.next();
          if (next.done) more = false;
          else meta = next.value.slice(PREFIX.meta.length);
        }
        if (meta !== id) yield id;
      }
    } finally {
      await metas.return(undefined);
    }
  }

  /** The keys of a family whose id (right after the prefix) was created at or after `fromMs`, in
   * order, read BATCH at a time. */
  private async *keysFrom(prefix: string, fromMs: number): AsyncGenerator<string> {
    const all = keys.allOf(prefix);
    const it = this.db.keys(fromMs > 0 ? { ...all, gte: `${prefix}${idTimePrefix(fromMs)}` } : all);
    try {
      for (;;) {
        const batch = await it.nextv(BATCH);
        if (!batch.length) return;
        yield* batch;
      }
    } finally {
      await it.close();
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
