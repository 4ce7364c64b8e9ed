/**
 * Reading an inbox for the API: a page of its listing, what is newer than a point (live routes,
 * waiters), a search, a count. Retention holds here as in the sweeper: a message past its TTL or
 * its inbox's cap is never listed. A message not parsed yet is parsed first (it jumps the
 * parser's line), so nothing is served half-made.
 *
 * The parser knows every message waiting for it (those a restart found unparsed included), so
 * these ask it, not the store; what they read of the store (an inbox's index, envelopes,
 * summaries) usually comes from its read cache, not LevelDB.
 */
import type { InboundConfig } from '../config/schema.js';
import type { ParseQueue } from './parse/parse-queue.js';
import { matches, type Query } from './search/query.js';
import { idPrefixAt, inboxIdTime } from './store/ids.js';
import type { InboxStore } from './store/inbox-store.js';
import type { InboundEnvelope, InboxEntry, MessageSummary } from './store/types.js';

/** One line of an inbox listing. */
export interface ListedMessage {
  envelope: InboundEnvelope;
  entry: InboxEntry;
  summary: MessageSummary | null;
}

export interface SearchOptions {
  limit: number;
  before?: string;
  inbox?: string;
  maxScan: number;
  readable: (envelope: InboundEnvelope) => boolean;
}

export interface SearchPage {
  items: { envelope: InboundEnvelope; summary: MessageSummary | null }[];
  next: string | null;
}

export class InboxReader {
  constructor(
    private readonly store: InboxStore,
    private readonly parser: ParseQueue,
    private readonly config: Pick<InboundConfig, 'ttl' | 'maxPerInbox'>,
  ) {}

  private live(id: string, nowMs = Date.now()): boolean {
    return inboxIdTime(id) > nowMs - this.config.ttl;
  }

  /**
   * An inbox, newest first: up to `limit` messages older than the `before` id (a cursor from an
   * earlier page), only those with `tag` when one is given. `more` says whether older ones exist.
   */
  async list(inbox: string, opts: { limit: number; before?: string; tag?: string }): Promise<{ items: ListedMessage[]; more: boolean }> {
    const now = Date.now();
    const cap = this.config.maxPerInbox;
    let position = opts.before ? await this.store.countNewer(inbox, opts.before) + 1 : 0;
    const picked: { id: string; entry: InboxEntry }[] = [];
    let more = false;
    for await (const e of this.store.entries(inbox, opts.before)) {
      if (position++ >= cap || !this.live(e.id, now)) break;
      if (opts.tag && !e.entry.tags.includes(opts.tag)) continue;
      if (picked.length === opts.limit) {
        more = true;
        break;
      }
      picked.push(e);
    }
    return { items: await this.withRecords(picked), more };
  }

  /**
   * An inbox's messages newer than the id `after` and received at or after `sinceMs`, oldest
   * first (what a subscriber missed, or what a waiter waits for), within the inbox's cap.
   */
  async newer(inbox: string, opts: { after?: string; sinceMs?: number; tag?: string; limit: number }): Promise<ListedMessage[]> {
    const now = Date.now();
    const picked: { id: string; entry: InboxEntry }[] = [];
    let position = 0;
    for await (const e of this.store.entries(inbox)) {
      if (position++ >= this.config.maxPerInbox || !this.live(e.id, now)) break;
      if (opts.after !== undefined && e.id <= opts.after) break;
      if (opts.sinceMs !== undefined && inboxIdTime(e.id) < opts.sinceMs) break;
      if (!opts.tag || e.entry.tags.includes(opts.tag)) picked.push(e);
    }
    const oldestFirst = picked.reverse().slice(0, opts.limit);
    return this.withRecords(oldestFirst);
  }

  /**
   * Messages matching a search, newest first: `limit` of them from before the id `before` (the
   * cursor of an earlier page), only those `readable` says the caller may see. A search by one
   * inbox reads that inbox's index; any other reads the store newest first, within the dates the
   * query gives, at most `maxScan` messages per call (`next` then says where to go on).
   */
  async search(q: Query, opts: SearchOptions): Promise<SearchPage> {
    const now = Date.now();
    const from = idPrefixAt(Math.max(q.after ?? 0, now - this.config.ttl));
    const beforeIds = [opts.before, q.before !== undefined ? idPrefixAt(q.before) : undefined].filter((v): v is string => v !== undefined);
    const before = beforeIds.length ? beforeIds.sort()[0] : undefined;
    const ids = opts.inbox ? this.inboxIds(opts.inbox, before, from) : this.store.idsNewestFirst({ before, from });
    const items: { envelope: InboundEnvelope; summary: MessageSummary | null }[] = [];
    let scanned = 0;
    for await (const id of ids) {
      if (++scanned > opts.maxScan) return { items, next: id };
      await this.parser.ensure(id);
      const [doc, envelope] = await Promise.all([this.store.searchDoc(id), this.store.getEnvelope(id)]);
      if (!doc || !envelope || !opts.readable(envelope) || !matches(q, doc)) continue;
      items.push({ envelope, summary: (await this.store.getSummaries([id]))[0] ?? null });
      if (items.length === opts.limit) return { items, next: id };
    }
    return { items, next: null };
  }

  /** An inbox's ids, newest first, from before `before` down to the id prefix `from`, within its cap. */
  private async *inboxIds(inbox: string, before: string | undefined, from: string): AsyncGenerator<string> {
    let position = 0;
    for await (const e of this.store.entries(inbox)) {
      if (position++ >= this.config.maxPerInbox || e.id < from) return;
      if (before === undefined || e.id < before) yield e.id;
    }
  }

  async count(inbox: string, tag?: string): Promise<number> {
    let n = 0;
    const now = Date.now();
    for await (const e of this.store.entries(inbox)) {
      if (n >= this.config.maxPerInbox || !this.live(e.id, now)) break;
      if (!tag || e.entry.tags.includes(tag)) n++;
    }
    return n;
  }

  /** The listing lines of these entries, each message parsed first; one deleted meanwhile is left out. */
  private async withRecords(picked: { id: string; entry: InboxEntry }[]): Promise<ListedMessage[]> {
    const ids = picked.map((p) => p.id);
    await Promise.all(ids.map((id) => this.parser.ensure(id)));
    const [envelopes, summaries] = await Promise.all([this.store.getEnvelopes(ids), this.store.getSummaries(ids)]);
    const items: ListedMessage[] = [];
    picked.forEach((p, i) => {
      const envelope = envelopes[i];
      if (envelope) items.push({ envelope, entry: p.entry, summary: summaries[i] ?? null });
    });
    return items;
  }
}
