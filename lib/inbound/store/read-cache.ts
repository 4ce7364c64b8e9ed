/**
 * What the inbox API reads most, kept in memory by the inbox store: the index of recently read
 * inboxes (their ids, newest first, with each entry) and the envelopes and summaries of recently
 * read messages. A listing of a cached inbox reads nothing from LevelDB, so under a flood it does
 * not wait its turn on libuv's threads behind the receipts' synced writes, nor go back to the
 * event loop (busy with the SMTP sessions) once per batch of keys.
 *
 * Coherence: the store tells the cache of every write to what it keeps: `touch` before the write
 * starts, the change itself (`added`, `dropped`, …) once the write is on disk. A fill (what a read
 * found in LevelDB) is installed only if no write touched what it read while it read: such a
 * write's change may be missing from what the read saw, and is applied (idempotently: insert if
 * absent, remove if present) only to what is already installed. A write the store cannot account
 * for (a database reopened after a failure) empties the cache.
 *
 * What the cache hands out is shared: callers read it and never change it; a change replaces the
 * object (an inbox's id list is copied on write, so a reader holding the old one iterates a
 * consistent snapshot, as a LevelDB iterator would).
 *
 * Bounds: MAX_INBOXES inboxes of at most MAX_ENTRIES entries each (a larger inbox is read from the
 * store each time), MAX_RECORDS envelopes and as many summaries, and parsed messages (what a get
 * of one message serves: text, HTML, headers) up to MAX_PARSED_BYTES of their stored JSON, none
 * larger than MAX_PARSED_ONE; the least recently used go first.
 */
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage } from './types.js';

const MAX_INBOXES = 100;
/** Entries of one cached inbox: an inbox over its cap between two sweeps still fits (cap 200). */
export const MAX_ENTRIES = 1000;
const MAX_RECORDS = 1000;
/** parsed messages: 4 MB of their JSON in all (an inbox of 200 small messages), 256 KB at most each */
const MAX_PARSED_BYTES = 4 * 1024 * 1024;
const MAX_PARSED_ONE = 256 * 1024;
/** inboxes remembered as too large to cache (until a removal makes them smaller) */
const MAX_OVERSIZED = 1000;

/** One inbox's index: ids newest first, and each one's entry. Never changed once handed out. */
export interface CachedInbox {
  readonly ids: readonly string[];
  readonly entries: ReadonlyMap<string, InboxEntry>;
}

/** A read from LevelDB in progress, and whether a write touched what it reads. */
export interface Fill {
  readonly inboxes: ReadonlySet<string>;
  readonly ids: ReadonlySet<string>;
  /** inboxes and ids written while the fill read (all of them after a clear) */
  readonly spoiled: Set<string>;
  everything: boolean;
}

/** Map used as an LRU: a hit moves the key to the end, the first key is the oldest. */
function lruGet<K, V>(map: Map<K, V>, key: K): V | undefined {
  const v = map.get(key);
  if (v !== undefined) {
    map.delete(key);
    map.set(key, v);
  }
  return v;
}

function lruSet<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value as K);
}

/** Index of `id` in ids sorted newest (largest) first, or where it would go. */
function positionOf(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! > id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class ReadCache {
  private readonly inboxes = new Map<string, CachedInbox>();
  private readonly oversized = new Set<string>();
  private readonly envelopes = new Map<string, InboundEnvelope>();
  private readonly summaries = new Map<string, MessageSummary>();
  private readonly parsed = new Map<string, { value: ParsedMessage; bytes: number }>();
  private parsedBytes = 0;
  private readonly fills = new Set<Fill>();

  // --- reads ----------------------------------------------------------------------------------

  inbox(name: string): CachedInbox | undefined {
    return lruGet(this.inboxes, name);
  }

  /** Known to hold more than MAX_ENTRIES: read from the store, do not try to cache it. */
  isOversized(name: string): boolean {
    return this.oversized.has(name);
  }

  envelope(id: string): InboundEnvelope | undefined {
    return lruGet(this.envelopes, id);
  }

  summary(id: string): MessageSummary | undefined {
    return lruGet(this.summaries, id);
  }

  parsedMessage(id: string): ParsedMessage | undefined {
    return lruGet(this.parsed, id)?.value;
  }

  /** How many messages of a cached inbox are newer than `id`. */
  static countNewer(inbox: CachedInbox, id: string): number {
    return positionOf(inbox.ids, id);
  }

  /** Where the entries older than `before` start in a cached inbox. */
  static startAfter(inbox: CachedInbox, before: string | undefined): number {
    if (before === undefined) return 0;
    const at = positionOf(inbox.ids, before);
    return inbox.ids[at] === before ? at + 1 : at;
  }

  // --- fills ----------------------------------------------------------------------------------

  /** A read of these inboxes and ids from LevelDB starts; end it with `endFill`, whatever happens. */
  beginFill(inboxes: Iterable<string>, ids: Iterable<string>): Fill {
    const fill: Fill = { inboxes: new Set(inboxes), ids: new Set(ids), spoiled: new Set(), everything: false };
    this.fills.add(fill);
    return fill;
  }

  endFill(fill: Fill): void {
    this.fills.delete(fill);
  }

  private spoiled(fill: Fill, key: string): boolean {
    return fill.everything || fill.spoiled.has(key);
  }

  /** Installs an inbox's whole index as a fill read it (unless a write touched it meanwhile); returns it either way. */
  installInbox(fill: Fill, name: string, rows: { id: string; entry: InboxEntry }[]): CachedInbox {
    const inbox: CachedInbox = { ids: rows.map((r) => r.id), entries: new Map(rows.map((r) => [r.id, r.entry])) };
    if (!this.spoiled(fill, `i:${name}`)) lruSet(this.inboxes, name, inbox, MAX_INBOXES);
    return inbox;
  }

  /** A fill found more than MAX_ENTRIES entries in the inbox. */
  foundOversized(fill: Fill, name: string): void {
    if (!this.spoiled(fill, `i:${name}`)) this.markOversized(name);
  }

  private markOversized(name: string): void {
    if (this.oversized.size >= MAX_OVERSIZED) this.oversized.clear();
    this.oversized.add(name);
  }

  installEnvelope(fill: Fill, id: string, envelope: InboundEnvelope): void {
    if (!this.spoiled(fill, id)) lruSet(this.envelopes, id, envelope, MAX_RECORDS);
  }

  installSummary(fill: Fill, id: string, summary: MessageSummary): void {
    if (!this.spoiled(fill, id)) lruSet(this.summaries, id, summary, MAX_RECORDS);
  }

  /** `bytes`: the size of its stored JSON, which stands for what it holds in memory. */
  installParsed(fill: Fill, id: string, value: ParsedMessage, bytes: number): void {
    if (this.spoiled(fill, id) || bytes > MAX_PARSED_ONE) return;
    this.forgetParsed(id);
    this.parsed.set(id, { value, bytes });
    this.parsedBytes += bytes;
    for (const [oldest, { bytes: n }] of this.parsed) {
      if (this.parsedBytes <= MAX_PARSED_BYTES) break;
      this.parsed.delete(oldest);
      this.parsedBytes -= n;
    }
  }

  private forgetParsed(id: string): void {
    const had = this.parsed.get(id);
    if (!had) return;
    this.parsed.delete(id);
    this.parsedBytes -= had.bytes;
  }

  // --- writes (told by the store) -------------------------------------------------------------

  /** A write to these messages and inboxes starts (or has just finished): fills reading them are spoiled. */
  touch(ids: Iterable<string>, inboxes: Iterable<string>): void {
    if (!this.fills.size) return;
    const keys = [...ids, ...[...inboxes].map((i) => `i:${i}`)];
    for (const fill of this.fills) {
      for (const key of keys) {
        if (key.startsWith('i:') ? fill.inboxes.has(key.slice(2)) : fill.ids.has(key)) fill.spoiled.add(key);
      }
    }
  }

  /** A message was stored for these inboxes. */
  added(id: string, entries: ReadonlyMap<string, InboxEntry>): void {
    this.touch([id], entries.keys());
    for (const [name, entry] of entries) this.setEntry(name, id, entry);
  }

  /** An inbox's entry for a message changed (read / unread). */
  entryChanged(name: string, id: string, entry: InboxEntry): void {
    this.touch([id], [name]);
    if (this.inboxes.get(name)?.entries.has(id)) this.setEntry(name, id, entry);
  }

  private setEntry(name: string, id: string, entry: InboxEntry): void {
    const inbox = this.inboxes.get(name);
    if (!inbox) return;
    const entries = new Map(inbox.entries);
    let ids = inbox.ids;
    if (!entries.has(id)) {
      const at = positionOf(ids, id);
      ids = [...ids.slice(0, at), id, ...ids.slice(at)];
    }
    entries.set(id, entry);
    if (ids.length > MAX_ENTRIES) {
      this.inboxes.delete(name);
      this.markOversized(name);
      return;
    }
    this.inboxes.set(name, { ids, entries });
  }

  /**
   * A message left these inboxes: `envelope` is what is left of it (its other inboxes), undefined
   * when it is gone altogether.
   */
  dropped(id: string, from: readonly string[], envelope: InboundEnvelope | undefined): void {
    this.touch([id], from);
    for (const name of from) {
      this.oversized.delete(name);
      const inbox = this.inboxes.get(name);
      if (!inbox?.entries.has(id)) continue;
      const entries = new Map(inbox.entries);
      entries.delete(id);
      this.inboxes.set(name, { ids: inbox.ids.filter((x) => x !== id), entries });
    }
    if (envelope) this.envelopeChanged(envelope);
    else {
      this.envelopes.delete(id);
      this.summaries.delete(id);
      this.forgetParsed(id);
    }
  }

  /** A message's envelope was rewritten (a release noted, an inbox let go of it). */
  envelopeChanged(envelope: InboundEnvelope): void {
    this.touch([envelope.id], []);
    if (this.envelopes.has(envelope.id)) this.envelopes.set(envelope.id, envelope);
  }

  /** A message was parsed: its summary is kept only if it or its envelope is (it was read before). */
  summaryChanged(id: string, summary: MessageSummary): void {
    this.touch([id], []);
    this.forgetParsed(id);
    if (this.envelopes.has(id) || this.summaries.has(id)) lruSet(this.summaries, id, summary, MAX_RECORDS);
  }

  /** Forgets everything, and no fill under way is installed. */
  clear(): void {
    for (const fill of this.fills) fill.everything = true;
    this.inboxes.clear();
    this.oversized.clear();
    this.envelopes.clear();
    this.summaries.clear();
    this.parsed.clear();
    this.parsedBytes = 0;
  }
}
