/**
 * The queue store: bodies, metadata and delivery rows in one LevelDB, and the only code that
 * writes them.
 *
 * Invariants:
 * - A message becomes visible (and deliverable) in exactly one synced batch that writes its
 *   metadata, every delivery row and their schedule keys together (plus the last body chunks).
 *   Body chunks streamed before that batch are unsynced puts; LevelDB's log is sequential, so the
 *   synced batch makes them durable too. Until then they are invisible leftovers.
 * - Leftovers (body chunks without metadata) of an ingest that failed or was interrupted are
 *   deleted by `collectGarbage`, never while their ingest is still running.
 */
import type { Logger } from 'pino';
import { keys, decodeBodyKey, decodeRowKey, PREFIX } from './keys.js';
import { GroupCommitter, type BatchOp } from './group-commit.js';
import { QueueCounters } from './counters.js';
import { openQueueDb, type QueueDb } from './open.js';
import { queueIdTime } from './ids.js';
import type { DeliveryRow, MessageMeta } from './types.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const parse = <T>(buf: Buffer) => JSON.parse(buf.toString('utf8')) as T;

export interface StoreOptions {
  chunkSizeBytes: number;
  logger: Logger;
}

export class QueueStore {
  readonly counters = new QueueCounters();
  readonly startedAt = Date.now();
  /** ids whose ingest is running: the garbage collector leaves their chunks alone */
  private readonly inflight = new Set<string>();
  private readonly committer: GroupCommitter;

  private constructor(
    readonly db: QueueDb,
    readonly path: string,
    private readonly opts: StoreOptions,
  ) {
    this.committer = new GroupCommitter(db);
  }

  static async open(path: string, opts: StoreOptions): Promise<QueueStore> {
    const db = await openQueueDb(path);
    const store = new QueueStore(db, path, opts);
    await store.loadCounters();
    return store;
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  private async loadCounters(): Promise<void> {
    for await (const value of this.db.values(keys.allOf(PREFIX.row))) {
      this.counters.add(parse<DeliveryRow>(value), 1);
    }
  }

  /** Starts streaming one message's body into the queue. */
  bodyWriter(id: string): BodyWriter {
    this.inflight.add(id);
    return new BodyWriter(this.db, id, this.opts.chunkSizeBytes, () => this.inflight.delete(id));
  }

  /**
   * Makes a message visible: metadata, rows, schedule keys and the writer's last chunks in one
   * synced batch (shared with other messages committing at the same time). Resolves only once it
   * is on disk.
   */
  async commitMessage(meta: MessageMeta, rows: DeliveryRow[], body: BodyWriter): Promise<void> {
    const ops: BatchOp[] = body.finalOps();
    ops.push({ type: 'put', key: keys.meta(meta.id), value: json(meta) });
    for (const row of rows) {
      ops.push({ type: 'put', key: keys.row(row.id, row.seq), value: json(row) });
      ops.push({ type: 'put', key: keys.schedule(row.zone, row.due, row.id, row.seq), value: Buffer.from(row.domain) });
    }
    try {
      await this.committer.commit(ops);
    } finally {
      body.done();
    }
    for (const row of rows) this.counters.add(row, 1);
  }

  /** Writes a batch of queue changes (synced, group-committed): used by the delivery outcomes. */
  commit(ops: BatchOp[]): Promise<void> {
    return this.committer.commit(ops);
  }

  async getMeta(id: string): Promise<MessageMeta | undefined> {
    const value = await this.db.get(keys.meta(id));
    return value === undefined ? undefined : parse<MessageMeta>(value);
  }

  async getRows(id: string): Promise<DeliveryRow[]> {
    const rows: DeliveryRow[] = [];
    for await (const value of this.db.values(keys.rowRange(id))) rows.push(parse<DeliveryRow>(value));
    return rows;
  }

  /** The stored body, chunk by chunk, in order. */
  async *readBody(id: string): AsyncGenerator<Buffer> {
    for await (const value of this.db.values(keys.bodyRange(id))) yield value;
  }

  /** Removes a message and all its rows. Returns the rows removed, or undefined when there was no such message. */
  async deleteMessage(id: string): Promise<DeliveryRow[] | undefined> {
    const meta = await this.getMeta(id);
    if (!meta) return undefined;
    const rows = await this.getRows(id);
    const ops: BatchOp[] = [{ type: 'del', key: keys.meta(id) }];
    for (const row of rows) {
      ops.push({ type: 'del', key: keys.row(id, row.seq) });
      ops.push({ type: 'del', key: keys.schedule(row.zone, row.due, id, row.seq) });
    }
    await this.committer.commit(ops);
    for (const row of rows) this.counters.add(row, -1);
    // without its metadata the body is unreachable; clear it now (the collector would later)
    await this.db.clear(keys.bodyRange(id));
    return rows;
  }

  /**
   * Deletes body chunks that have no metadata and are older than `graceMs` (by the time in their
   * id), unless their ingest is still running. Returns the number of messages collected.
   */
  async collectGarbage(nowMs: number, graceMs: number): Promise<number> {
    const orphans: string[] = [];
    let lastId = '';
    for await (const key of this.db.keys(keys.allOf(PREFIX.body))) {
      const { id } = decodeBodyKey(key);
      if (id === lastId) continue;
      lastId = id;
      if (this.inflight.has(id) || queueIdTime(id) > nowMs - graceMs) continue;
      if ((await this.db.get(keys.meta(id))) === undefined) orphans.push(id);
    }
    for (const id of orphans) await this.db.clear(keys.bodyRange(id));
    return orphans.length;
  }

  /** Every pending row id, for tests and tools that compare the queue with a list of ids. */
  async *allRowKeys(): AsyncGenerator<{ id: string; seq: number }> {
    for await (const key of this.db.keys(keys.allOf(PREFIX.row))) yield decodeRowKey(key);
  }
}

/**
 * Buffers a message body into fixed-size chunks. Full chunks are written as they fill (unsynced,
 * invisible until the commit); the tail goes into the commit batch, so a small message costs one
 * write in all.
 */
export class BodyWriter {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private chunkNo = 0;
  private wroteAny = false;
  private finished = false;
  bytes = 0;

  constructor(
    private readonly db: QueueDb,
    readonly id: string,
    private readonly chunkSizeBytes: number,
    private readonly onDone: () => void,
  ) {}

  get chunks(): number {
    return this.chunkNo + (this.partsBytes > 0 ? 1 : 0);
  }

  async write(chunk: Buffer): Promise<void> {
    if (!chunk.length) return;
    this.parts.push(chunk);
    this.partsBytes += chunk.length;
    this.bytes += chunk.length;
    while (this.partsBytes >= this.chunkSizeBytes) {
      const all = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
      const head = all.subarray(0, this.chunkSizeBytes);
      const rest = all.subarray(this.chunkSizeBytes);
      this.parts = rest.length ? [rest] : [];
      this.partsBytes = rest.length;
      this.wroteAny = true;
      await this.db.put(keys.body(this.id, this.chunkNo++), head);
    }
  }

  /**
   * Everything written so far, in order: the chunks already put (unsynced, but readable in this
   * process), then the buffered tail. For plugins that must see the stored message before its
   * commit (message:store); after the commit the same read covers the whole body.
   */
  async *read(): AsyncGenerator<Buffer> {
    const written = this.chunkNo;
    const tail = [...this.parts];
    for (let n = 0; n < written; n++) {
      const chunk = await this.db.get(keys.body(this.id, n));
      if (chunk === undefined) throw new Error(`body chunk ${n} of ${this.id} is missing`);
      yield chunk;
    }
    yield* tail;
  }

  /** The batch operations for the buffered tail. */
  finalOps(): BatchOp[] {
    if (!this.partsBytes) return [];
    const tail = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
    this.parts = [];
    this.partsBytes = 0;
    return [{ type: 'put', key: keys.body(this.id, this.chunkNo++), value: tail }];
  }

  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone();
  }

  /** Throws away what was written; if that fails too, the garbage collector gets it later. */
  async discard(): Promise<void> {
    this.parts = [];
    this.partsBytes = 0;
    try {
      if (this.wroteAny) await this.db.clear(keys.bodyRange(this.id));
    } catch {
      // the database is failing; the leftovers stay invisible and are collected later
    } finally {
      this.done();
    }
  }
}
