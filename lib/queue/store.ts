/**
 * The queue store: bodies, metadata and delivery rows in one LevelDB, and the only code that
 * writes them.
 *
 * Invariants:
 * - A message becomes visible (and deliverable) in exactly one synced batch that writes its
 *   metadata, every delivery row and their schedule keys together (plus the last body chunks).
 *   Body chunks streamed before that batch are unsynced puts; LevelDB's log is sequential, so the
 *   synced batch makes them durable too, and the logs LevelDB switched away from meanwhile are
 *   synced before the commit is acknowledged (log-files.ts). Until then they are invisible
 *   leftovers.
 * - A write never lands on another message: new ids are above every id the queue held when it
 *   opened and increase from there (ids.ts), and a body writer checks its id is free (no metadata,
 *   no leftover chunks) before its first write and its commit.
 * - Leftovers (body chunks without metadata) of an ingest that failed or was interrupted are
 *   deleted by `collectGarbage`, never while their ingest is still running.
 * - Every write goes through the WriteGuard. After a failed write the database is reopened before
 *   anything else is written, and a message is acknowledged only if its body and its commit were
 *   written in one generation in which nothing failed; otherwise the caller gets an error (451)
 *   and whatever of it reached the disk is removed after the reopen.
 */
import type { Logger } from 'pino';
import { keys, decodeBodyKey, decodeRowKey, PREFIX } from './keys.js';
import { GroupCommitter, type BatchOp, type GroupCommitStats } from '../store/group-commit.js';
import { QueueCounters } from './counters.js';
import { openQueueDb, type QueueDb } from './open.js';
import { QueueIds, queueIdTime } from './ids.js';
import { StoreUnavailableError, WriteGuard } from '../store/write-guard.js';
import { KeyedMutex } from '../store/keyed-mutex.js';
import { LogFiles } from './log-files.js';
import type { DeliveryRow, MessageMeta } from './types.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const parse = <T>(buf: Buffer) => JSON.parse(buf.toString('utf8')) as T;
/** How many deleted ids wasDeleted() remembers. */
const MAX_REMEMBERED_DELETES = 10_000;

export interface StoreOptions {
  chunkSizeBytes: number;
  logger: Logger;
}

export class QueueStore {
  readonly counters = new QueueCounters();
  readonly startedAt = Date.now();
  /** ids whose ingest is running: the garbage collector leaves their chunks alone */
  private readonly inflight = new Set<string>();
  /** ids being deleted: a second delete of the same id must not count its rows down again */
  private readonly deleting = new Set<string>();
  /** ids refused after their commit may have reached the disk: removed after the next reopen */
  private readonly refused = new Set<string>();
  private readonly committer: GroupCommitter;
  readonly guard: WriteGuard;
  /** LevelDB's log files: the ones it left unsynced under a body's chunks are synced at the commit */
  readonly logs: LogFiles;
  /** told the id of every message deleted by deleteMessage (in-memory copies drop it) */
  private readonly deleteListeners: ((id: string) => void)[] = [];
  /** per message: work that must not interleave (see exclusive) */
  private readonly perMessage = new KeyedMutex();
  /** ids deleted lately (an outcome reported after the delete finds its rows gone) */
  private readonly deletedIds = new Set<string>();
  /** new message ids: above every id in the queue when it opened, increasing from there */
  private ids = new QueueIds();

  private constructor(
    readonly db: QueueDb,
    readonly path: string,
    private readonly opts: StoreOptions,
  ) {
    this.committer = new GroupCommitter(db);
    this.guard = new WriteGuard(db, opts.logger, () => this.removeRefused());
    this.logs = new LogFiles(path);
  }

  static async open(path: string, opts: StoreOptions): Promise<QueueStore> {
    const db = await openQueueDb(path);
    const store = new QueueStore(db, path, opts);
    await store.loadCounters();
    store.ids = new QueueIds(await store.highestId());
    await store.logs.scan();
    return store;
  }

  /** The highest id with metadata or body chunks in the queue (a clock behind it must not reuse it). */
  private async highestId(): Promise<string | undefined> {
    let highest: string | undefined;
    for (const prefix of [PREFIX.meta, PREFIX.body]) {
      for await (const key of this.db.keys({ ...keys.allOf(prefix), reverse: true, limit: 1 })) {
        const id = key.slice(prefix.length, prefix.length + 22);
        if (highest === undefined || id > highest) highest = id;
      }
    }
    return highest;
  }

  /** A new message id (see QueueIds for why it is never one the queue has). */
  newId(nowMs?: number): string {
    return this.ids.next(nowMs);
  }

  async close(): Promise<void> {
    await this.guard.close();
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }

  /** Synced writes so far and the commits they carried (fsync sharing, for health and bench). */
  get commitStats(): Readonly<GroupCommitStats> {
    return this.committer.stats;
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  /** False while the database is being reopened after a failed write. */
  get writable(): boolean {
    return this.guard.writable;
  }

  private async loadCounters(): Promise<void> {
    for await (const value of this.db.values(keys.allOf(PREFIX.row))) {
      this.counters.add(parse<DeliveryRow>(value), 1);
    }
  }

  /**
   * Starts streaming one message's body into the queue. Whether the id is free is checked at once
   * (in parallel with the client's bytes): the writer writes nothing, and the commit fails, if a
   * message or leftover chunks with this id are in the queue already, so nothing is overwritten.
   */
  bodyWriter(id: string, retainUpTo = 0): BodyWriter {
    if (this.inflight.has(id)) throw new QueueIdTakenError(id);
    this.inflight.add(id);
    const free = this.checkFree(id);
    free.catch(() => undefined); // the writer's first write or the commit reports it
    return new BodyWriter(this, id, this.opts.chunkSizeBytes, () => this.inflight.delete(id), retainUpTo, free);
  }

  private async checkFree(id: string): Promise<void> {
    const [meta, chunk] = await this.db.getMany([keys.meta(id), keys.body(id, 0)]);
    if (meta === undefined && chunk === undefined) return;
    this.opts.logger.error({ event: 'QUEUE_ID_TAKEN', id }, `queue id ${id} is taken already; the new message is refused and nothing is overwritten`);
    throw new QueueIdTakenError(id);
  }

  /**
   * Makes a message visible: metadata, rows, schedule keys and the writer's last chunks in one
   * synced batch (shared with other messages committing at the same time). Resolves only once it
   * is on disk. `carried`: other queue changes that must be written in the same batch (a bounce's
   * DSN carries the removal of the bounced row); such a batch stands or falls as a whole, so if
   * its write fails it is never taken out again on its own after the reopen.
   */
  async commitMessage(meta: MessageMeta, rows: DeliveryRow[], body: BodyWriter, carried: readonly BatchOp[] = []): Promise<void> {
    const ops: BatchOp[] = body.finalOps();
    ops.push(...carried);
    const alone = carried.length === 0;
    ops.push({ type: 'put', key: keys.meta(meta.id), value: json(meta) });
    for (const row of rows) {
      ops.push({ type: 'put', key: keys.row(row.id, row.seq), value: json(row) });
      ops.push({ type: 'put', key: keys.schedule(row.zone, row.due, row.id, row.seq), value: Buffer.from(row.domain) });
    }
    const gen = this.guard.generation;
    try {
      await body.idFree;
      // chunks written before a reopen may not have survived it: the body must be of this generation
      if (body.generation !== undefined && body.generation !== gen) throw new Error('the queue database was reopened while the body was written');
      // chunks already written are durable only with their logs, synced here if LevelDB switched
      // away from one, and after the commit if the commit made it switch (log-files.ts)
      const newestLog = body.firstLog === undefined ? undefined : await this.guard.write(() => this.logs.syncOlder(body.firstLog!));
      try {
        await this.guard.write(() => this.committer.commit(ops));
        if (newestLog !== undefined) await this.guard.write(() => this.logs.syncOlder(newestLog));
      } catch (err) {
        // a failed write may still surface after the reopen replays the log
        if (!(err instanceof StoreUnavailableError) && alone) this.refused.add(meta.id);
        throw err;
      }
      if (this.guard.spoiled(gen)) {
        // another write failed before this one completed: after the reopen this record may be
        // gone (or torn), so it is not acknowledged, and removed if it is there
        if (alone) this.refused.add(meta.id);
        throw new Error('a queue write failed while this message was committed');
      }
    } finally {
      body.done();
    }
    for (const row of rows) this.counters.add(row, 1);
  }

  /** After a reopen: takes out messages that were refused but may have reached the disk. */
  private async removeRefused(): Promise<void> {
    if (!this.refused.size) return;
    const ids = [...this.refused];
    const ops: BatchOp[] = [];
    for (const id of ids) {
      ops.push({ type: 'del', key: keys.meta(id) });
      for await (const [key, value] of this.db.iterator(keys.rowRange(id))) {
        const row = parse<DeliveryRow>(value);
        ops.push({ type: 'del', key }, { type: 'del', key: keys.schedule(row.zone, row.due, id, row.seq) });
      }
      for await (const key of this.db.keys(keys.bodyRange(id))) ops.push({ type: 'del', key });
    }
    await this.guard.write(() => this.db.batch(ops, { sync: true }));
    for (const id of ids) {
      this.refused.delete(id);
      this.rememberDeleted(id);
    }
    this.opts.logger.warn({ component: 'queue', ids: ids.slice(0, 20) }, `cleared ${ids.length} refused message(s) that may have reached the disk before the failure`);
  }

  /** Writes a batch of queue changes (synced, group-committed): used by the delivery outcomes. */
  commit(ops: BatchOp[]): Promise<void> {
    return this.guard.write(() => this.committer.commit(ops));
  }

  onDelete(listener: (id: string) => void): void {
    this.deleteListeners.push(listener);
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
  /**
   * Runs `fn` alone for message `id`: recording an outcome and deleting the message never
   * interleave, so an outcome can trust the rows it leased unless the message was deleted.
   */
  exclusive<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.perMessage.run(id, fn);
  }

  /** Was message `id` deleted lately (by an operator, or as refused after a reopen)? */
  wasDeleted(id: string): boolean {
    return this.deletedIds.has(id);
  }

  private rememberDeleted(id: string): void {
    this.deletedIds.add(id);
    // a lease lives at most queue.leaseTimeout; far fewer deletes than this happen in that time
    if (this.deletedIds.size > MAX_REMEMBERED_DELETES) this.deletedIds.delete(this.deletedIds.values().next().value!);
  }

  deleteMessage(id: string): Promise<DeliveryRow[] | undefined> {
    return this.exclusive(id, () => this.deleteNow(id));
  }

  private async deleteNow(id: string): Promise<DeliveryRow[] | undefined> {
    if (this.deleting.has(id)) return undefined;
    this.deleting.add(id);
    try {
      const meta = await this.getMeta(id);
      if (!meta) return undefined;
      const rows = await this.getRows(id);
      const ops: BatchOp[] = [{ type: 'del', key: keys.meta(id) }];
      for (const row of rows) {
        ops.push({ type: 'del', key: keys.row(id, row.seq) });
        ops.push({ type: 'del', key: keys.schedule(row.zone, row.due, id, row.seq) });
      }
      await this.guard.write(() => this.committer.commit(ops));
      this.rememberDeleted(id);
      for (const row of rows) this.counters.add(row, -1);
      for (const listener of this.deleteListeners) listener(id);
      // without its metadata the body is unreachable; clear it now (the collector would later)
      await this.guard.write(() => this.db.clear(keys.bodyRange(id)));
      return rows;
    } finally {
      this.deleting.delete(id);
    }
  }

  /**
   * Deletes body chunks that have no metadata and are older than `graceMs` (by the time in their
   * id), unless their ingest is still running. Returns the number of messages collected.
   */
  async collectGarbage(nowMs: number, graceMs: number): Promise<number> {
    if (!this.guard.writable) return 0;
    const orphans: string[] = [];
    let lastId = '';
    for await (const key of this.db.keys(keys.allOf(PREFIX.body))) {
      const { id } = decodeBodyKey(key);
      if (id === lastId) continue;
      lastId = id;
      if (this.inflight.has(id) || queueIdTime(id) > nowMs - graceMs) continue;
      if ((await this.db.get(keys.meta(id))) === undefined) orphans.push(id);
    }
    let collected = 0;
    for (const id of orphans) {
      // an ingest may have started for this id since the scan (not with today's ids, but cheap)
      if (this.inflight.has(id)) continue;
      await this.guard.write(() => this.db.clear(keys.bodyRange(id)));
      collected++;
    }
    return collected;
  }

  /** Every pending row id, for tests and tools that compare the queue with a list of ids. */
  async *allRowKeys(): AsyncGenerator<{ id: string; seq: number }> {
    for await (const key of this.db.keys(keys.allOf(PREFIX.row))) yield decodeRowKey(key);
  }
}

/** A new message's id is in the queue already: it is refused (451), nothing is overwritten. */
export class QueueIdTakenError extends Error {
  constructor(readonly id: string) {
    super(`queue id ${id} is in use`);
    this.name = 'QueueIdTakenError';
  }
}

/**
 * Buffers a message body into chunks of at most `chunkSizeBytes`. A chunk is written when the next
 * piece would not fit in it (unsynced, invisible until the commit); the tail goes into the commit
 * batch, so a small message costs one write in all.
 *
 * Chunk boundaries follow the pieces as they arrive (socket reads, cut only where a piece is
 * larger than a chunk): a chunk made of one piece is that piece, not a copy. Joining pieces into
 * fixed-size chunks copied every body once more and left the copies to V8's major collections
 * (the master's largest allocation at 100 KB, bench/README.md). Readers only count chunks.
 */
export class BodyWriter {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private chunkNo = 0;
  private wroteAny = false;
  private finished = false;
  bytes = 0;
  /** the database generation the first chunk was written in (undefined: nothing written yet) */
  generation: number | undefined;
  /** the newest LevelDB log known when the first chunk was written: it or a later one holds it */
  firstLog: number | undefined;

  private readonly db: QueueDb;
  private readonly guard: WriteGuard;
  private readonly logs: LogFiles;

  constructor(
    store: Pick<QueueStore, 'db' | 'guard' | 'logs'>,
    readonly id: string,
    private readonly chunkSizeBytes: number,
    private readonly onDone: () => void,
    /** keep the chunks in memory too while the body is at most this big (0: never) */
    private readonly retainUpTo = 0,
    /** settles once the id is known to be free in the queue (rejects when it is not) */
    readonly idFree: Promise<void> = Promise.resolve(),
  ) {
    this.db = store.db;
    this.guard = store.guard;
    this.logs = store.logs;
    this.retained = retainUpTo > 0 ? [] : undefined;
  }

  /** The body's chunks as written, when it stayed within `retainUpTo` (for FreshBodies). */
  retained: Buffer[] | undefined;

  private retain(chunk: Buffer): void {
    if (!this.retained) return;
    if (this.bytes > this.retainUpTo) {
      this.retained = undefined;
      return;
    }
    // a small view of a big buffer (a socket read) would keep all of that buffer alive
    this.retained.push(chunk.buffer.byteLength > chunk.length * 2 ? Buffer.from(chunk) : chunk);
  }

  get chunks(): number {
    return this.chunkNo + (this.partsBytes > 0 ? 1 : 0);
  }

  async write(chunk: Buffer): Promise<void> {
    if (!chunk.length) return;
    this.bytes += chunk.length;
    // a piece larger than a chunk is cut into equal views (64 KB + 1 byte would leave a 1-byte
    // view that the next piece then has to be copied onto)
    const cuts = Math.ceil(chunk.length / this.chunkSizeBytes);
    const step = Math.ceil(chunk.length / cuts);
    for (let at = 0; at < chunk.length; at += step) {
      const piece = cuts === 1 ? chunk : chunk.subarray(at, at + step);
      if (this.partsBytes + piece.length > this.chunkSizeBytes) await this.putParts();
      this.parts.push(piece);
      this.partsBytes += piece.length;
    }
  }

  /** The pieces held so far, as one chunk (a copy only when there are several). */
  private joinParts(): Buffer {
    const chunk = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
    this.parts = [];
    this.partsBytes = 0;
    return chunk;
  }

  private async putParts(): Promise<void> {
    const chunk = this.joinParts();
    await this.idFree;
    this.wroteAny = true;
    this.generation ??= this.guard.generation;
    if (this.generation !== this.guard.generation) throw new Error('the queue database was reopened while the body was written');
    this.firstLog ??= this.logs.newest;
    this.retain(chunk);
    await this.guard.write(() => this.db.put(keys.body(this.id, this.chunkNo++), chunk));
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
    const tail = this.joinParts();
    this.retain(tail);
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
      if (this.wroteAny) await this.guard.write(() => this.db.clear(keys.bodyRange(this.id)));
    } catch {
      // the database is failing; the leftovers stay invisible and are collected later
    } finally {
      this.done();
    }
  }
}
