/**
 * The queue store: bodies, metadata and delivery rows in one LevelDB, and the only code that
 * writes them. The database is the store's own (reads in reader.ts, body chunks by the body
 * writers it makes): the rest of Sluice gets typed operations (commit a message, write a
 * QueueBatch of outcomes or moved rows, scan due rows, read a job, a chunk, a listing, delete),
 * whose records go through one codec (codec.ts) and whose multi-key changes are built in one
 * place (batch.ts).
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
import { keys, decodeBodyKey, type SuppressionKind } from './keys.js';
import { GroupCommitter, type BatchOp, type GroupCommitStats } from '../store/group-commit.js';
import { QueueCounters } from './counters.js';
import { openQueueDb, type QueueDb } from './open.js';
import { BodyWriter } from './body-writer.js';
import { QueueBatch } from './batch.js';
import { decodeMeta, decodeRow } from './codec.js';
import { QueueReader } from './reader.js';
export type { QueueCensus } from './reader.js';
import { QueueIds, queueIdTime } from './ids.js';
import { StoreUnavailableError, WriteGuard } from '../store/write-guard.js';
import { KeyedMutex } from '../store/keyed-mutex.js';
import { writeOps } from '../store/write-ops.js';
import { LogFiles } from './log-files.js';
import type { DeliveryRow, MessageMeta } from './types.js';

/**
 * How far before the newest id found at open the first garbage collection looks for leftovers.
 * A leftover is the body of an ingest cut short, and an ingest lasts as long as its SMTP session
 * or HTTP upload at most (minutes): six hours before the last id the previous process wrote
 * cover it with room to spare, without reading every body of a deep queue (which, besides taking
 * seconds, maps all of LevelDB's table pages into the master's memory).
 */
const CRASH_LEFTOVER_WINDOW_MS = 6 * 3_600_000;

/** How many deleted ids wasDeleted() remembers. */
const MAX_REMEMBERED_DELETES = 10_000;

export interface StoreOptions {
  chunkSizeBytes: number;
  logger: Logger;
  /** opens the LevelDB (default: openQueueDb); a test may wrap the database it returns to watch
   * the writes */
  openDb?: (path: string) => Promise<QueueDb>;
  /** open returns before the rows are counted (`counters.loading` until `counted` resolves):
   * the master does, so it listens at once on a queue of a million rows; tools wait */
  countInBackground?: boolean;
}

/** How the count at open went: rows read and how long it took. */
export interface QueueCount {
  rows: number;
  ms: number;
}

export class QueueStore extends QueueReader {
  readonly counters = new QueueCounters();
  readonly startedAt = Date.now();
  /** ids whose ingest is running: the garbage collector leaves their chunks alone */
  private readonly inflight = new Set<string>();
  /** ids being deleted: a second delete of the same id must not count its rows down again */
  private readonly deleting = new Set<string>();
  /** ids refused after their commit may have reached the disk: removed after the next reopen */
  private readonly refused = new Set<string>();
  private readonly committer: GroupCommitter;
  private readonly guard: WriteGuard;
  /** LevelDB's log files: the ones it left unsynced under a body's chunks are synced at the commit */
  private readonly logs: LogFiles;
  /** told the id of every message deleted by deleteMessage (in-memory copies drop it) */
  private readonly deleteListeners: ((id: string) => void)[] = [];
  /** per message: work that must not interleave (see exclusive) */
  private readonly perMessage = new KeyedMutex();
  /** ids deleted lately (an outcome reported after the delete finds its rows gone) */
  private readonly deletedIds = new Set<string>();
  /** new message ids: above every id in the queue when it opened, increasing from there */
  private ids = new QueueIds();
  /** the garbage collector reads bodies with ids from this time on (see collectGarbage) */
  private gcFromMs = 0;
  /** the count of the rows at open (see QueueCounters): resolves when it is done */
  private counting: Promise<QueueCount> = Promise.resolve({ rows: 0, ms: 0 });

  private constructor(
    db: QueueDb,
    readonly path: string,
    private readonly opts: StoreOptions,
  ) {
    super(db);
    this.committer = new GroupCommitter(db);
    this.guard = new WriteGuard(db, opts.logger, () => this.removeRefused());
    this.logs = new LogFiles(path);
  }

  static async open(path: string, opts: StoreOptions): Promise<QueueStore> {
    const db = await (opts.openDb ?? openQueueDb)(path);
    const store = new QueueStore(db, path, opts);
    // first, before anything can write: the count reads a snapshot taken now
    store.counting = store.countAtOpen();
    // a failed count is reported through `counted`; never an unhandled rejection
    store.counting.catch(() => undefined);
    try {
      const highest = await store.highestId();
      store.ids = new QueueIds(highest);
      if (highest !== undefined) store.gcFromMs = queueIdTime(highest) - CRASH_LEFTOVER_WINDOW_MS;
      await store.logs.scan();
      if (!opts.countInBackground) await store.counting;
    } catch (err) {
      await store.close().catch(() => undefined);
      throw err;
    }
    return store;
  }

  /** Resolves once the rows found at open are counted (at once unless countInBackground); rejects
   * when the count failed (the counters then stay `loading`). */
  get counted(): Promise<QueueCount> {
    return this.counting;
  }

  /** A new message id (see QueueIds for why it is never one the queue has). */
  newId(nowMs?: number): string {
    return this.ids.next(nowMs);
  }

  async close(): Promise<void> {
    await this.guard.close();
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }

  /**
   * Compacts the whole database now (LevelDB's compactRange): what LevelDB's background work
   * does over time, at once. For tools that write a queue in one go (the benchmarks' fixture),
   * so the next open does not start with seconds of compaction debt.
   */
  async compact(): Promise<void> {
    await this.db.compactRange('', '\uffff');
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

  /**
   * Counts the rows found at open. The iterator is made synchronously, here, so its snapshot is
   * the queue before any change this store makes: those move the counters themselves.
   */
  private async countAtOpen(): Promise<QueueCount> {
    const startedAt = performance.now();
    this.counters.beginLoad();
    // a thousand rows per read: a million rows are counted in a thousand steps, not a million
    for await (const batch of this.rowBatches({ size: 1000 })) for (const row of batch) this.counters.load(row);
    this.counters.endLoad();
    return { rows: this.counters.loadedRows, ms: Math.round(performance.now() - startedAt) };
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
    return new BodyWriter({ db: this.db, guard: this.guard, logs: this.logs }, id, this.opts.chunkSizeBytes, () => this.inflight.delete(id), retainUpTo, free);
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
    const batch = new QueueBatch();
    batch.ops.push(...body.finalOps(), ...carried);
    const alone = carried.length === 0;
    batch.putMeta(meta);
    for (const row of rows) batch.putRow(row);
    const { ops } = batch;
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
    const batch = new QueueBatch();
    for (const id of ids) {
      // the chunks are counted, not taken from the metadata: a torn write may have left either
      let chunks = 0;
      for await (const key of this.db.keys(keys.bodyRange(id))) chunks = Math.max(chunks, decodeBodyKey(key).chunk + 1);
      batch.removeMessage(id, chunks);
      for await (const value of this.db.values(keys.rowRange(id))) batch.removeRow(decodeRow(value));
    }
    await this.guard.write(() => writeOps(this.db, batch.ops, { sync: true }));
    for (const id of ids) {
      this.refused.delete(id);
      this.rememberDeleted(id);
    }
    this.opts.logger.warn({ component: 'queue', ids: ids.slice(0, 20) }, `cleared ${ids.length} refused message(s) that may have reached the disk before the failure`);
  }

  /** Writes a batch of queue changes (synced, group-committed): outcomes, moved rows. */
  write(batch: QueueBatch): Promise<void> {
    return this.guard.write(() => this.committer.commit(batch.ops));
  }

  /** Stores a suppression list entry (`data` undefined: removes it), synced. */
  writeSuppression(kind: SuppressionKind, value: string, data: Buffer | undefined): Promise<void> {
    const key = keys.suppression(kind, value);
    const ops: BatchOp[] = [data === undefined ? { type: 'del', key } : { type: 'put', key, value: data }];
    return this.guard.write(() => this.committer.commit(ops));
  }

  onDelete(listener: (id: string) => void): void {
    this.deleteListeners.push(listener);
  }

  /**
   * A job's records, read for index entries a scan found: the metadata and each row still due at
   * the time its entry says. A row moved meanwhile (an outcome recorded after the scan's snapshot)
   * is left out: its own due time is the truth. Entries whose row or message is gone (deleted
   * mid-scan) are dropped from the index here.
   */
  async readJob(zone: string, id: string, entries: readonly { seq: number; due: number }[]): Promise<{ meta: MessageMeta | undefined; rows: DeliveryRow[] }> {
    const [metaValue, ...rowValues] = await this.db.getMany([keys.meta(id), ...entries.map((e) => keys.row(id, e.seq))]);
    const meta = metaValue === undefined ? undefined : decodeMeta(metaValue);
    const rows: DeliveryRow[] = [];
    const stale = new QueueBatch();
    rowValues.forEach((value, i) => {
      const { seq, due } = entries[i]!;
      if (value === undefined || !meta) {
        stale.removeSchedule({ zone, due, id, seq });
        return;
      }
      const row = decodeRow(value);
      // a row held since the scan read its schedule key lost that key; it is not handed out
      if (row.due === due && row.status !== 'held') rows.push(row);
    });
    if (stale.size) {
      // unsynced: a key that comes back after a crash is dropped again by the next scan
      await this.guard.write(() => writeOps(this.db, stale.ops, { sync: false })).catch(() => undefined);
    }
    return { meta, rows };
  }

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

  /** Removes a message and all its rows. Returns the rows removed, or undefined when there was no such message. */
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
      // the body is cleared after the commit (below), by range: a partial body has no count
      const batch = new QueueBatch().removeMessage(id, 0);
      for (const row of rows) batch.removeRow(row);
      await this.write(batch);
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
   *
   * A pass reads only bodies that may be leftovers not yet looked at: ids from `gcFromMs` on. After
   * a pass, every id older than the grace period and not in flight has been collected or has
   * metadata, and a new leftover can only come from an ingest running now or later (new ids never
   * go back in time, ids.ts): the next pass starts at the older of the two. At open, the window
   * before the newest id covers what a crash left (CRASH_LEFTOVER_WINDOW_MS). So a pass reads the
   * last grace period's bodies, not the whole queue.
   */
  async collectGarbage(nowMs: number, graceMs: number): Promise<number> {
    if (!this.guard.writable) return 0;
    let nextFromMs = nowMs - graceMs;
    for (const id of this.inflight) nextFromMs = Math.min(nextFromMs, queueIdTime(id));
    const orphans: string[] = [];
    for await (const id of this.bodiesWithoutMeta(this.gcFromMs)) {
      if (!this.inflight.has(id) && queueIdTime(id) <= nowMs - graceMs) orphans.push(id);
    }
    let collected = 0;
    for (const id of orphans) {
      // an ingest may have started for this id since the scan (not with today's ids, but cheap)
      if (this.inflight.has(id)) continue;
      await this.guard.write(() => this.db.clear(keys.bodyRange(id)));
      collected++;
    }
    this.gcFromMs = Math.max(this.gcFromMs, nextFromMs);
    return collected;
  }

}

/** A new message's id is in the queue already: it is refused (451), nothing is overwritten. */
export class QueueIdTakenError extends Error {
  constructor(readonly id: string) {
    super(`queue id ${id} is in use`);
    this.name = 'QueueIdTakenError';
  }
}
