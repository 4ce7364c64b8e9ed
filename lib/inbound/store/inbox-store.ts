/**
 * The inbox store: received messages in their own LevelDB (inbound.path), raw bytes as received,
 * what the parser made of them, and which inboxes hold them. The only code that touches that
 * database.
 *
 * Invariants:
 * - A message is stored once, whatever the number of its inboxes; it is visible once its e: key
 *   exists, and that key, every i: key and the p: key ("parse me") are written in one synced batch
 *   with the last raw chunk. Chunks put before that batch are invisible leftovers until then.
 * - The 250 is given only after that batch is on disk (`commit` resolves); parsing comes after.
 * - Changes to one message (parse saved, removed from an inbox, removed) never interleave, so a
 *   parse saved for a message deleted meanwhile leaves nothing behind.
 * - When the last inbox lets a message go, everything of it goes: envelope, raw chunks, parse,
 *   summary.
 * - Every write goes through the WriteGuard: after a failed write the database is reopened before
 *   anything else is written, and a commit spoiled by a failure is refused (451), never half-kept.
 * - Every write to what the API reads most (inbox entries, envelopes, summaries) is told to the
 *   read cache (read-cache.ts), before it starts and once it is done; a reopen empties the cache.
 *   Reads inside a message's own changes go to LevelDB, not the cache.
 *
 * Reads are in store-reads.ts (this class extends it); the small records beside the mail (private
 * inboxes, aliases, webhooks, settings) are in side-records.ts, on the same database and guard.
 */
import type { Logger } from 'pino';
import { ChunkWriter, type GuardedWrites } from '../../store/chunk-writer.js';
import { GroupCommitter, type BatchOp } from '../../store/group-commit.js';
import { KeyedMutex } from '../../store/keyed-mutex.js';
import { openLevelDb, type LevelDb } from '../../store/level-db.js';
import { StoreUnavailableError, WriteGuard } from '../../store/write-guard.js';
import { writeOps } from '../../store/write-ops.js';
import { InboxIds, inboxIdTime } from './ids.js';
import { idOfRawKey, keys, PREFIX } from './keys.js';
import type { SearchDoc } from '../search/query.js';
import { ReadCache } from './read-cache.js';
import { parse, StoreReads } from './store-reads.js';
import { SideRecords } from './side-records.js';
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage, Release } from './types.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** Bytes per stored chunk of a raw message. */
const CHUNK_BYTES = 64 * 1024;
/** releases remembered per message */
const MAX_RELEASES_KEPT = 20;
/**
 * LevelDB's memtable and block cache for the inbox. Smaller than the queue's: what passes through
 * is the raw message once, and reads come from the API a message at a
 * time. 4 MB each kept a 20 MB message's receipt within the receiver's memory budget.
 */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
const CACHE_BYTES = 4 * 1024 * 1024;

export class InboxStore extends StoreReads {
  private readonly committer: GroupCommitter;
  private readonly guard: WriteGuard;
  private readonly perMessage = new KeyedMutex();
  /** ids whose raw bytes are being received: the leftover collector leaves them alone */
  private readonly inflight = new Set<string>();
  /** ids refused after their commit may have reached the disk: removed after the next reopen */
  private readonly refused = new Set<string>();
  private ids: InboxIds;
  /** private inboxes, aliases, webhooks, settings */
  readonly records: SideRecords;
  /** raw bytes of every stored message together */
  totalBytes = 0;
  /** stored messages */
  messageCount = 0;
  /** writes started and not yet finished (the load gate watches it) */
  pendingWrites = 0;

  /** the guard's writes, counted in pendingWrites while they run (the receipt path's writes) */
  private readonly counted: GuardedWrites;

  private constructor(
    db: LevelDb,
    readonly path: string,
    logger: Logger,
  ) {
    super(db, new ReadCache());
    this.committer = new GroupCommitter(db);
    const guard = (this.guard = new WriteGuard(db, logger, () => this.reopened(), 'inbox'));
    this.records = new SideRecords(db, guard, this.committer);
    this.ids = new InboxIds();
    this.counted = {
      get generation() {
        return guard.generation;
      },
      write: <T>(op: () => Promise<T>): Promise<T> => {
        this.pendingWrites++;
        return guard.write(op).finally(() => this.pendingWrites--);
      },
    };
  }

  static async open(path: string, logger: Logger): Promise<InboxStore> {
    const db = await openLevelDb(path, { name: 'inbox store', pathKey: 'inbound.path', writeBufferBytes: WRITE_BUFFER_BYTES, cacheBytes: CACHE_BYTES });
    const store = new InboxStore(db, path, logger);
    await store.load();
    return store;
  }

  /** Totals, and the newest id so that new ids sort after it whatever the clock says. */
  private async load(): Promise<void> {
    let newest: string | undefined;
    for await (const [key, value] of this.db.iterator(keys.allOf(PREFIX.envelope))) {
      this.totalBytes += parse<InboundEnvelope>(value).size;
      this.messageCount++;
      newest = key.slice(2);
    }
    this.ids = new InboxIds(newest);
  }

  async close(): Promise<void> {
    await this.guard.close();
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close();
  }

  get isOpen(): boolean {
    return this.db.status === 'open';
  }

  /** False while the database is being reopened after a failed write. */
  get writable(): boolean {
    return this.guard.writable;
  }

  newId(nowMs = Date.now()): string {
    return this.ids.next(nowMs);
  }

  /** Starts receiving one message's raw bytes. */
  rawWriter(id: string): ChunkWriter {
    this.inflight.add(id);
    return new ChunkWriter(this.db, this.counted, (n) => keys.raw(id, n), CHUNK_BYTES);
  }

  /**
   * Makes a received message visible: its envelope, its inbox entries, its "parse me" mark and
   * the last raw chunk in one synced batch. Resolves once that is on disk.
   */
  async commit(envelope: InboundEnvelope, writer: ChunkWriter, entries: Map<string, InboxEntry>): Promise<void> {
    const { id } = envelope;
    const ops: BatchOp[] = writer.finalOps();
    ops.push({ type: 'put', key: keys.envelope(id), value: json(envelope) });
    ops.push({ type: 'put', key: keys.pending(id), value: Buffer.alloc(0) });
    for (const [inbox, entry] of entries) ops.push({ type: 'put', key: keys.inbox(inbox, id), value: json(entry) });
    const gen = this.guard.generation;
    this.cache.touch([id], entries.keys());
    try {
      if (writer.generation !== undefined && writer.generation !== gen) throw new Error('the inbox database was reopened while the message was received');
      try {
        await this.counted.write(() => this.committer.commit(ops));
      } catch (err) {
        // a failed write may still surface after the reopen replays the log
        if (!(err instanceof StoreUnavailableError)) this.refused.add(id);
        throw err;
      }
      if (this.guard.spoiled(gen)) {
        this.refused.add(id);
        throw new Error('an inbox write failed while this message was committed');
      }
    } finally {
      this.inflight.delete(id);
    }
    this.cache.added(id, entries);
    this.totalBytes += envelope.size;
    this.messageCount++;
  }

  /** Throws away the raw chunks of a message that was not committed. */
  async discard(id: string, writer: ChunkWriter): Promise<void> {
    try {
      if (writer.putAny) await this.guard.write(() => this.db.clear(keys.rawRange(id)));
    } catch {
      // the database is failing; the leftovers stay invisible and are collected later
    } finally {
      this.inflight.delete(id);
    }
  }

  /**
   * After a reopen: what the cache holds may not be what the database holds now (a failed write
   * may have surfaced), and messages that were refused but may have reached the disk are taken out.
   */
  private async reopened(): Promise<void> {
    this.cache.clear();
    for (const id of [...this.refused]) {
      const envelope = await this.readEnvelope(id);
      const ops: BatchOp[] = [{ type: 'del', key: keys.envelope(id) }, { type: 'del', key: keys.pending(id) }];
      for (const inbox of envelope?.inboxes ?? []) ops.push({ type: 'del', key: keys.inbox(inbox, id) });
      await this.guard.write(() => writeOps(this.db, ops, { sync: true }));
      await this.guard.write(() => this.db.clear(keys.rawRange(id)));
      this.refused.delete(id);
    }
    this.cache.clear();
  }

  // --- the parser's output ------------------------------------------------------------------

  /**
   * Saves what the parser made of a message and clears its "parse me" mark. Not synced: a crash
   * before it reaches the disk leaves the mark, and the message is parsed again at start.
   * Returns false (and keeps nothing) when the message was deleted while it was parsed.
   */
  saveParsed(id: string, parsed: ParsedMessage, summary: MessageSummary, search: SearchDoc): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      if (!(await this.readEnvelope(id))) return false;
      const ops: BatchOp[] = [
        { type: 'put', key: keys.meta(id), value: json(parsed) },
        { type: 'put', key: keys.summary(id), value: json(summary) },
        { type: 'put', key: keys.search(id), value: json(search) },
        { type: 'del', key: keys.pending(id) },
      ];
      this.cache.touch([id], []);
      await this.guard.write(() => writeOps(this.db, ops, { sync: false }));
      this.cache.summaryChanged(id, summary);
      return true;
    });
  }

  // --- removal ------------------------------------------------------------------------------

  /** Takes a message out of one inbox (all of it goes with the last inbox). False: it was not there. */
  removeFromInbox(inbox: string, id: string, sync = true): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.readEnvelope(id);
      if (!envelope || (await this.db.get(keys.inbox(inbox, id))) === undefined) return false;
      await this.drop(envelope, [inbox], sync);
      return true;
    });
  }

  /** Takes a message out of every inbox: it is gone. False: there was no such message. */
  remove(id: string, sync = true): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.readEnvelope(id);
      if (!envelope) return false;
      await this.drop(envelope, envelope.inboxes, sync);
      return true;
    });
  }

  /**
   * Takes messages out of one inbox in one batch (retention's cap: many at a time, so a flood into
   * one inbox costs a batch per EVICT_BATCH messages rather than three LevelDB calls each). Not
   * synced: one lost in a crash is removed again by the next sweep. Returns how many were there.
   */
  removeManyFromInbox(inbox: string, ids: readonly string[]): Promise<number> {
    return this.lockAll([...ids].sort(), async () => {
      const [envelopes, present] = await Promise.all([this.db.getMany(ids.map(keys.envelope)), this.db.getMany(ids.map((id) => keys.inbox(inbox, id)))]);
      const drops: { envelope: InboundEnvelope; rest: InboundEnvelope | undefined }[] = [];
      const ops: BatchOp[] = [];
      ids.forEach((_, i) => {
        const v = envelopes[i];
        if (v === undefined || present[i] === undefined) return;
        const envelope = parse<InboundEnvelope>(v);
        const drop = dropOps(envelope, [inbox]);
        ops.push(...drop.ops);
        drops.push({ envelope, rest: drop.rest });
      });
      if (!drops.length) return 0;
      this.cache.touch(ids, [inbox]);
      await this.guard.write(() => writeOps(this.db, ops, { sync: false }));
      for (const { envelope, rest } of drops) this.dropped(envelope, [inbox], rest);
      return drops.length;
    });
  }

  /** Runs `fn` holding the per-message lock of every id (taken in the order given: sort them). */
  private lockAll<T>(ids: readonly string[], fn: () => Promise<T>, at = 0): Promise<T> {
    return at === ids.length ? fn() : this.perMessage.run(ids[at]!, () => this.lockAll(ids, fn, at + 1));
  }

  private async drop(envelope: InboundEnvelope, inboxes: readonly string[], sync: boolean): Promise<void> {
    const { ops, rest } = dropOps(envelope, inboxes);
    this.cache.touch([envelope.id], inboxes);
    await this.guard.write(() => (sync ? this.committer.commit(ops) : writeOps(this.db, ops, { sync: false })));
    this.dropped(envelope, inboxes, rest);
  }

  /** After a removal is on disk: the cache and the totals follow. */
  private dropped(envelope: InboundEnvelope, inboxes: readonly string[], rest: InboundEnvelope | undefined): void {
    this.cache.dropped(envelope.id, inboxes, rest);
    if (rest) return;
    this.totalBytes -= envelope.size;
    this.messageCount--;
  }

  /** Adds a release's outcome to the message's envelope; false when the message is gone. */
  noteRelease(id: string, release: Release): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.readEnvelope(id);
      if (!envelope) return false;
      const changed = { ...envelope, releases: [...(envelope.releases ?? []), release].slice(-MAX_RELEASES_KEPT) };
      this.cache.touch([id], []);
      await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.envelope(id), value: json(changed) }]));
      this.cache.envelopeChanged(changed);
      return true;
    });
  }

  async setRead(inbox: string, id: string, read: boolean): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const v = await this.db.get(keys.inbox(inbox, id));
      if (v === undefined) return false;
      const entry: InboxEntry = { ...parse<InboxEntry>(v), read };
      this.cache.touch([id], [inbox]);
      await this.guard.write(() => this.db.put(keys.inbox(inbox, id), json(entry)));
      this.cache.entryChanged(inbox, id, entry);
      return true;
    });
  }

  /**
   * Deletes raw chunks that have no envelope and are older than `graceMs`, unless their receipt is
   * still running (a client gone mid-DATA, a failed commit whose cleanup failed too). Returns how
   * many messages' leftovers went.
   */
  async collectLeftovers(nowMs: number, graceMs: number): Promise<number> {
    if (!this.guard.writable) return 0;
    const orphans: string[] = [];
    let last = '';
    for await (const key of this.db.keys(keys.allOf(PREFIX.raw))) {
      const id = idOfRawKey(key);
      if (id === last) continue;
      last = id;
      if (this.inflight.has(id) || inboxIdTime(id) > nowMs - graceMs) continue;
      if ((await this.db.get(keys.envelope(id))) === undefined) orphans.push(id);
    }
    for (const id of orphans) {
      if (this.inflight.has(id)) continue;
      await this.guard.write(() => this.db.clear(keys.rawRange(id)));
    }
    return orphans.length;
  }
}

/**
 * What taking a message out of `inboxes` writes: their entries go; if no inbox is left, all of the
 * message goes, else its envelope is rewritten with the inboxes left (`rest`).
 */
function dropOps(envelope: InboundEnvelope, inboxes: readonly string[]): { ops: BatchOp[]; rest: InboundEnvelope | undefined } {
  const { id } = envelope;
  const left = envelope.inboxes.filter((i) => !inboxes.includes(i));
  const ops: BatchOp[] = inboxes.map((inbox) => ({ type: 'del', key: keys.inbox(inbox, id) }));
  const rest = left.length ? { ...envelope, inboxes: left } : undefined;
  if (rest) {
    ops.push({ type: 'put', key: keys.envelope(id), value: json(rest) });
    return { ops, rest };
  }
  for (const key of [keys.envelope(id), keys.pending(id), keys.meta(id), keys.summary(id), keys.search(id)]) ops.push({ type: 'del', key });
  // the envelope names every raw chunk (0 … chunks-1): they go in the same batch, which costs no
  // range scan (a clear() per message was a third of what a cap eviction cost under load)
  for (let n = 0; n < envelope.chunks; n++) ops.push({ type: 'del', key: keys.raw(id, n) });
  return { ops, rest: undefined };
}
