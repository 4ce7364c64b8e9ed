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
 */
import type { Logger } from 'pino';
import { ChunkWriter, type GuardedWrites } from '../../store/chunk-writer.js';
import { GroupCommitter, type BatchOp } from '../../store/group-commit.js';
import { KeyedMutex } from '../../store/keyed-mutex.js';
import { openLevelDb, type LevelDb } from '../../store/level-db.js';
import { StoreUnavailableError, WriteGuard } from '../../store/write-guard.js';
import { InboxIds, idPrefixAt, inboxIdTime } from './ids.js';
import { idOfInboxKey, idOfRawKey, keys, PREFIX } from './keys.js';
import type { WebhookEntry } from '../../webhooks/sender.js';
import type { SearchDoc } from '../search/query.js';
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage, Release, Reservation } from './types.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const parse = <T>(buf: Buffer) => JSON.parse(buf.toString('utf8')) as T;

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

export class InboxStore {
  private readonly committer: GroupCommitter;
  private readonly guard: WriteGuard;
  private readonly perMessage = new KeyedMutex();
  /** ids whose raw bytes are being received: the leftover collector leaves them alone */
  private readonly inflight = new Set<string>();
  /** ids refused after their commit may have reached the disk: removed after the next reopen */
  private readonly refused = new Set<string>();
  private ids: InboxIds;
  /** raw bytes of every stored message together */
  totalBytes = 0;
  /** stored messages */
  messageCount = 0;
  /** writes started and not yet finished (the load gate watches it) */
  pendingWrites = 0;

  /** the guard's writes, counted in pendingWrites while they run (the receipt path's writes) */
  private readonly counted: GuardedWrites;

  private constructor(
    private readonly db: LevelDb,
    readonly path: string,
    logger: Logger,
  ) {
    this.committer = new GroupCommitter(db);
    const guard = (this.guard = new WriteGuard(db, logger, () => this.removeRefused(), 'inbox'));
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

  /** After a reopen: takes out messages that were refused but may have reached the disk. */
  private async removeRefused(): Promise<void> {
    for (const id of [...this.refused]) {
      const envelope = await this.getEnvelope(id);
      const ops: BatchOp[] = [{ type: 'del', key: keys.envelope(id) }, { type: 'del', key: keys.pending(id) }];
      for (const inbox of envelope?.inboxes ?? []) ops.push({ type: 'del', key: keys.inbox(inbox, id) });
      await this.guard.write(() => this.db.batch(ops, { sync: true }));
      await this.guard.write(() => this.db.clear(keys.rawRange(id)));
      this.refused.delete(id);
    }
  }

  // --- reading ------------------------------------------------------------------------------

  async getEnvelope(id: string): Promise<InboundEnvelope | undefined> {
    const v = await this.db.get(keys.envelope(id));
    return v === undefined ? undefined : parse<InboundEnvelope>(v);
  }

  async getParsed(id: string): Promise<ParsedMessage | undefined> {
    const v = await this.db.get(keys.meta(id));
    return v === undefined ? undefined : parse<ParsedMessage>(v);
  }

  async getSummaries(ids: string[]): Promise<(MessageSummary | undefined)[]> {
    if (!ids.length) return [];
    const values = await this.db.getMany(ids.map(keys.summary));
    return values.map((v) => (v === undefined ? undefined : parse<MessageSummary>(v)));
  }

  async getEnvelopes(ids: string[]): Promise<(InboundEnvelope | undefined)[]> {
    if (!ids.length) return [];
    const values = await this.db.getMany(ids.map(keys.envelope));
    return values.map((v) => (v === undefined ? undefined : parse<InboundEnvelope>(v)));
  }

  /** Ids still waiting for the parser, oldest first (after a restart). */
  async *pendingIds(): AsyncGenerator<string> {
    for await (const key of this.db.keys(keys.allOf(PREFIX.pending))) yield key.slice(2);
  }

  /**
   * The raw message, chunk by chunk, as received. Bulk bytes read once do not go through
   * LevelDB's block cache (fillCache: false): it keeps the index and summaries the API reads often.
   */
  async *readRaw(id: string): AsyncGenerator<Buffer> {
    for await (const value of this.db.values({ ...keys.rawRange(id), fillCache: false })) yield value;
  }


  async entry(inbox: string, id: string): Promise<InboxEntry | undefined> {
    const v = await this.db.get(keys.inbox(inbox, id));
    return v === undefined ? undefined : parse<InboxEntry>(v);
  }

  /** An inbox's messages, newest first; `before` starts after an id of an earlier page. */
  async *entries(inbox: string, before?: string): AsyncGenerator<{ id: string; entry: InboxEntry }> {
    for await (const [key, value] of this.db.iterator({ ...keys.inboxRange(inbox, before), reverse: true })) {
      yield { id: idOfInboxKey(key), entry: parse<InboxEntry>(value) };
    }
  }

  /** How many messages of an inbox are newer than `id`. */
  async countNewer(inbox: string, id: string): Promise<number> {
    let n = 0;
    for await (const _ of this.db.keys({ gt: keys.inbox(inbox, id), lt: keys.inboxRange(inbox).lt })) n++;
    return n;
  }

  /** Ids of an inbox past its newest `keep`, newest first (the ones a cap removes). */
  async beyond(inbox: string, keep: number): Promise<string[]> {
    const out: string[] = [];
    let seen = 0;
    for await (const key of this.db.keys({ ...keys.inboxRange(inbox), reverse: true })) {
      if (++seen > keep) out.push(idOfInboxKey(key));
    }
    return out;
  }

  async count(inbox: string): Promise<number> {
    let n = 0;
    for await (const _ of this.db.keys(keys.inboxRange(inbox))) n++;
    return n;
  }

  /** Ids of messages that arrived before `beforeMs`, oldest first. */
  async *arrivedBefore(beforeMs: number): AsyncGenerator<string> {
    for await (const key of this.db.keys(keys.envelopesBefore(idPrefixAt(beforeMs)))) yield key.slice(2);
  }

  /** What search reads of a message (undefined until it is parsed). */
  async searchDoc(id: string): Promise<SearchDoc | undefined> {
    const v = await this.db.get(keys.search(id));
    return v === undefined ? undefined : parse<SearchDoc>(v);
  }

  /** Stored ids, newest first, from before the id `before` (an id or an id prefix) down to `from`. */
  async *idsNewestFirst(opts: { before?: string; from?: string } = {}): AsyncGenerator<string> {
    for await (const key of this.db.keys({ ...keys.envelopesBetween(opts.from ?? '', opts.before ?? '\uffff'), reverse: true })) yield key.slice(2);
  }

  /** Every stored id, oldest first. */
  async *allIds(): AsyncGenerator<string> {
    for await (const key of this.db.keys(keys.allOf(PREFIX.envelope))) yield key.slice(2);
  }

  /** What of a message is on disk, key family by family (for tests and tools: "all of it went"). */
  async footprint(id: string): Promise<{ envelope: boolean; raw: number; pending: boolean; parsed: boolean; summary: boolean }> {
    const count = async (range: { gte: string; lt: string }) => {
      let n = 0;
      for await (const _ of this.db.keys(range)) n++;
      return n;
    };
    const has = async (key: string) => (await this.db.get(key)) !== undefined;
    return {
      envelope: await has(keys.envelope(id)),
      raw: await count(keys.rawRange(id)),
      pending: await has(keys.pending(id)),
      parsed: await has(keys.meta(id)),
      summary: await has(keys.summary(id)),
    };
  }

  // --- small records: reservations, aliases, settings ---------------------------------------

  /** Every private inbox or domain and the hash of its key. */
  async *reservations(): AsyncGenerator<Reservation> {
    for await (const value of this.db.values(keys.allOf(PREFIX.reservation))) yield parse<Reservation>(value);
  }

  /** Reserves a target (synced: an operator's change), or releases it with `undefined`. */
  async setReservation(target: string, reservation: Reservation | undefined): Promise<void> {
    const key = keys.reservation(target);
    await this.guard.write(() => this.committer.commit([reservation ? { type: 'put', key, value: json(reservation) } : { type: 'del', key }]));
  }

  /** The address an altinbox alias delivers to, if it is one. */
  async aliasTarget(alias: string): Promise<string | undefined> {
    return (await this.db.get(keys.alias(alias)))?.toString('utf8');
  }

  async setAlias(alias: string, address: string): Promise<void> {
    await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.alias(alias), value: Buffer.from(address) }]));
  }

  /** Webhook notifications not delivered yet (the inbox's webhook outbox). */
  async webhooks(): Promise<WebhookEntry[]> {
    const out: WebhookEntry[] = [];
    for await (const value of this.db.values(keys.allOf(PREFIX.webhook))) out.push(parse<WebhookEntry>(value));
    return out;
  }

  /** Keeps one notification (synced: it must outlive a crash), or forgets it with `undefined`. */
  async setWebhook(id: string, entry: WebhookEntry | undefined): Promise<void> {
    const key = keys.webhook(id);
    await this.guard.write(() => this.committer.commit([entry ? { type: 'put', key, value: json(entry) } : { type: 'del', key }]));
  }

  /** A value the inbox keeps for itself (the alias secret). */
  async setting(name: string): Promise<Buffer | undefined> {
    return this.db.get(keys.setting(name));
  }

  async setSetting(name: string, value: Buffer): Promise<void> {
    await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.setting(name), value }]));
  }

  // --- the parser's output ------------------------------------------------------------------

  /**
   * Saves what the parser made of a message and clears its "parse me" mark. Not synced: a crash
   * before it reaches the disk leaves the mark, and the message is parsed again at start.
   * Returns false (and keeps nothing) when the message was deleted while it was parsed.
   */
  saveParsed(id: string, parsed: ParsedMessage, summary: MessageSummary, search: SearchDoc): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      if (!(await this.getEnvelope(id))) return false;
      const ops: BatchOp[] = [
        { type: 'put', key: keys.meta(id), value: json(parsed) },
        { type: 'put', key: keys.summary(id), value: json(summary) },
        { type: 'put', key: keys.search(id), value: json(search) },
        { type: 'del', key: keys.pending(id) },
      ];
      await this.guard.write(() => this.db.batch(ops));
      return true;
    });
  }

  // --- removal ------------------------------------------------------------------------------

  /** Takes a message out of one inbox (all of it goes with the last inbox). False: it was not there. */
  removeFromInbox(inbox: string, id: string, sync = true): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.getEnvelope(id);
      if (!envelope || (await this.db.get(keys.inbox(inbox, id))) === undefined) return false;
      await this.drop(envelope, [inbox], sync);
      return true;
    });
  }

  /** Takes a message out of every inbox: it is gone. False: there was no such message. */
  remove(id: string, sync = true): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.getEnvelope(id);
      if (!envelope) return false;
      await this.drop(envelope, envelope.inboxes, sync);
      return true;
    });
  }

  private async drop(envelope: InboundEnvelope, inboxes: readonly string[], sync: boolean): Promise<void> {
    const { id } = envelope;
    const left = envelope.inboxes.filter((i) => !inboxes.includes(i));
    const ops: BatchOp[] = inboxes.map((inbox) => ({ type: 'del', key: keys.inbox(inbox, id) }));
    if (left.length) {
      ops.push({ type: 'put', key: keys.envelope(id), value: json({ ...envelope, inboxes: left }) });
    } else {
      for (const key of [keys.envelope(id), keys.pending(id), keys.meta(id), keys.summary(id), keys.search(id)]) ops.push({ type: 'del', key });
      // the envelope names every raw chunk (0 … chunks-1): they go in the same batch, which costs
      // no range scan (a clear() per message was a third of what a cap eviction cost under load)
      for (let n = 0; n < envelope.chunks; n++) ops.push({ type: 'del', key: keys.raw(id, n) });
    }
    await this.guard.write(() => (sync ? this.committer.commit(ops) : this.db.batch(ops)));
    if (left.length) return;
    this.totalBytes -= envelope.size;
    this.messageCount--;
  }

  /** Adds a release's outcome to the message's envelope; false when the message is gone. */
  noteRelease(id: string, release: Release): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const envelope = await this.getEnvelope(id);
      if (!envelope) return false;
      const releases = [...(envelope.releases ?? []), release].slice(-MAX_RELEASES_KEPT);
      await this.guard.write(() => this.committer.commit([{ type: 'put', key: keys.envelope(id), value: json({ ...envelope, releases }) }]));
      return true;
    });
  }

  async setRead(inbox: string, id: string, read: boolean): Promise<boolean> {
    return this.perMessage.run(id, async () => {
      const entry = await this.entry(inbox, id);
      if (!entry) return false;
      await this.guard.write(() => this.db.put(keys.inbox(inbox, id), json({ ...entry, read })));
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
