/**
 * The reading half of the inbox store (inbox-store.ts holds the writes and the invariants): the
 * records of a message, an inbox's index, the raw bytes, and the scans retention and search use.
 * What the API reads most (an inbox's index, envelopes, summaries) comes from the read cache
 * (read-cache.ts) when it is there, and is read into it from LevelDB when it is not.
 */
import type { LevelDb } from '../../store/level-db.js';
import type { SearchDoc } from '../search/query.js';
import { idPrefixAt } from './ids.js';
import { idOfInboxKey, keys, PREFIX } from './keys.js';
import { MAX_ENTRIES, ReadCache, type CachedInbox, type Fill } from './read-cache.js';
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage } from './types.js';

export const parse = <T>(buf: Buffer) => JSON.parse(buf.toString('utf8')) as T;

export class StoreReads {
  constructor(
    protected readonly db: LevelDb,
    /** the index of recently read inboxes, and recently read envelopes and summaries */
    protected readonly cache: ReadCache,
  ) {}

  /** A message's envelope (from the read cache when it is there). */
  async getEnvelope(id: string): Promise<InboundEnvelope | undefined> {
    return (await this.getEnvelopes([id]))[0];
  }

  /**
   * The envelope as LevelDB has it, not through the cache: what a message's own changes read, and
   * the parser (it reads every message once; through the cache it would push out what the API reads).
   */
  async readEnvelope(id: string): Promise<InboundEnvelope | undefined> {
    const v = await this.db.get(keys.envelope(id));
    return v === undefined ? undefined : parse<InboundEnvelope>(v);
  }

  /** What the parser made of a message (from the read cache when it is there). */
  async getParsed(id: string): Promise<ParsedMessage | undefined> {
    const hit = this.cache.parsedMessage(id);
    if (hit) return hit;
    const fill = this.cache.beginFill([], [id]);
    try {
      const v = await this.db.get(keys.meta(id));
      if (v === undefined) return undefined;
      const parsed = parse<ParsedMessage>(v);
      this.cache.installParsed(fill, id, parsed, v.length);
      return parsed;
    } finally {
      this.cache.endFill(fill);
    }
  }

  getSummaries(ids: string[]): Promise<(MessageSummary | undefined)[]> {
    return this.cachedRecords(ids, (id) => this.cache.summary(id), keys.summary, (fill, id, v) => this.cache.installSummary(fill, id, v));
  }

  getEnvelopes(ids: string[]): Promise<(InboundEnvelope | undefined)[]> {
    return this.cachedRecords(ids, (id) => this.cache.envelope(id), keys.envelope, (fill, id, v) => this.cache.installEnvelope(fill, id, v));
  }

  /** Records by id: those the cache has, the rest read in one getMany and offered to the cache. */
  private async cachedRecords<T>(ids: string[], cached: (id: string) => T | undefined, key: (id: string) => string, install: (fill: Fill, id: string, value: T) => void): Promise<(T | undefined)[]> {
    const out = ids.map(cached);
    const missing = ids.filter((_, i) => out[i] === undefined);
    if (!missing.length) return out;
    const fill = this.cache.beginFill([], missing);
    try {
      const values = await this.db.getMany(missing.map(key));
      const found = new Map<string, T>();
      missing.forEach((id, i) => {
        const v = values[i];
        if (v === undefined) return;
        const value = parse<T>(v);
        found.set(id, value);
        install(fill, id, value);
      });
      return ids.map((id, i) => out[i] ?? found.get(id));
    } finally {
      this.cache.endFill(fill);
    }
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
    const cached = await this.inboxIndex(inbox);
    if (cached) return cached.entries.get(id);
    const v = await this.db.get(keys.inbox(inbox, id));
    return v === undefined ? undefined : parse<InboxEntry>(v);
  }

  /** An inbox's messages, newest first; `before` starts after an id of an earlier page. */
  async *entries(inbox: string, before?: string): AsyncGenerator<{ id: string; entry: InboxEntry }> {
    const cached = await this.inboxIndex(inbox);
    if (cached) {
      // a snapshot: changes replace the cached lists, they never change this one
      for (let at = ReadCache.startAfter(cached, before); at < cached.ids.length; at++) {
        const id = cached.ids[at]!;
        yield { id, entry: cached.entries.get(id)! };
      }
      return;
    }
    for await (const [key, value] of this.db.iterator({ ...keys.inboxRange(inbox, before), reverse: true })) {
      yield { id: idOfInboxKey(key), entry: parse<InboxEntry>(value) };
    }
  }

  /** How many messages of an inbox are newer than `id`. */
  async countNewer(inbox: string, id: string): Promise<number> {
    const cached = await this.inboxIndex(inbox);
    if (cached) return ReadCache.countNewer(cached, id);
    let n = 0;
    for await (const _ of this.db.keys({ gt: keys.inbox(inbox, id), lt: keys.inboxRange(inbox).lt })) n++;
    return n;
  }

  /**
   * An inbox's whole index from the read cache, read into it first if need be; undefined for an
   * inbox too large to cache (its readers go to LevelDB).
   */
  private async inboxIndex(inbox: string): Promise<CachedInbox | undefined> {
    const hit = this.cache.inbox(inbox);
    if (hit || this.cache.isOversized(inbox)) return hit;
    const fill = this.cache.beginFill([inbox], []);
    try {
      const rows = await this.db.iterator({ ...keys.inboxRange(inbox), reverse: true, limit: MAX_ENTRIES + 1 }).all();
      if (rows.length > MAX_ENTRIES) {
        this.cache.foundOversized(fill, inbox);
        return undefined;
      }
      return this.cache.installInbox(fill, inbox, rows.map(([key, value]) => ({ id: idOfInboxKey(key), entry: parse<InboxEntry>(value) })));
    } finally {
      this.cache.endFill(fill);
    }
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
}
