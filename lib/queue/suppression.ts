/**
 * The suppression list: recipient addresses and domains that get no mail from this queue, each
 * with an optional expiry. Kept in the queue database (x: keys, so it survives restarts and moves
 * with the queue) and in memory, where the delivery path asks it about every row it hands out:
 * a suppressed row is dropped there, without an attempt and without a bounce, with a DROPPED
 * line (Dispatch). Entries that expired are ignored at once and removed from the database the
 * next time the list is read.
 *
 * Bounded: at most MAX_SUPPRESSIONS entries (an operator's list, not a bounce database).
 */
import { createHash } from 'node:crypto';
import type { SuppressionKind } from './keys.js';
import type { QueueStore } from './store.js';

export const MAX_SUPPRESSIONS = 100_000;

export interface SuppressionEntry {
  /** 24 hex digits, stable for the address or domain (ZoneMTA's routes take an id of that form) */
  id: string;
  kind: SuppressionKind;
  /** the address or domain, lower case */
  value: string;
  created: number;
  /** ms since the epoch; absent: until removed */
  expires?: number;
  reason?: string;
}

export class SuppressionFullError extends Error {}

const entryId = (kind: SuppressionKind, value: string) => createHash('sha256').update(`${kind}:${value}`).digest('hex').slice(0, 24);

/** An address or domain as the list keys it; undefined when it is neither. */
export function normalise(kind: SuppressionKind, value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (!v || v.length > 320 || /[\s<>]/.test(v)) return undefined;
  if (kind === 'domain') return /^[a-z0-9.-]+$/.test(v) && !v.startsWith('.') && !v.endsWith('.') ? v : undefined;
  const at = v.lastIndexOf('@');
  return at > 0 && at < v.length - 1 ? v : undefined;
}

export class SuppressionList {
  private readonly byKey = new Map<string, SuppressionEntry>();

  private constructor(
    private readonly store: QueueStore,
    private readonly now: () => number,
  ) {}

  static async load(store: QueueStore, now: () => number = Date.now): Promise<SuppressionList> {
    const list = new SuppressionList(store, now);
    for await (const { kind, value, data } of store.suppressionEntries()) {
      const stored = JSON.parse(data.toString('utf8')) as Omit<SuppressionEntry, 'id' | 'kind' | 'value'>;
      list.byKey.set(`${kind}:${value}`, { id: entryId(kind, value), kind, value, ...stored });
    }
    return list;
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The entry that suppresses mail to `recipient` now, if any. */
  test(recipient: string): SuppressionEntry | undefined {
    if (!this.byKey.size) return undefined;
    const address = recipient.toLowerCase();
    const domain = address.slice(address.lastIndexOf('@') + 1);
    const now = this.now();
    for (const key of [`address:${address}`, `domain:${domain}`]) {
      const e = this.byKey.get(key);
      if (e && (e.expires === undefined || e.expires > now)) return e;
    }
    return undefined;
  }

  /** Adds (or replaces) an entry; `value` must already be normalised. */
  async add(kind: SuppressionKind, value: string, opts: { expires?: number; reason?: string } = {}): Promise<SuppressionEntry> {
    const key = `${kind}:${value}`;
    if (!this.byKey.has(key) && this.byKey.size >= MAX_SUPPRESSIONS) throw new SuppressionFullError(`the suppression list holds ${MAX_SUPPRESSIONS} entries, its limit`);
    const entry: SuppressionEntry = { id: entryId(kind, value), kind, value, created: this.now(), ...(opts.expires !== undefined ? { expires: opts.expires } : {}), ...(opts.reason ? { reason: opts.reason.slice(0, 200) } : {}) };
    const { id: _id, kind: _k, value: _v, ...stored } = entry;
    await this.store.writeSuppression(kind, value, Buffer.from(JSON.stringify(stored)));
    this.byKey.set(key, entry);
    return entry;
  }

  /** Removes the entry with this id, or for this address or domain; undefined when there is none. */
  async remove(idOrValue: string): Promise<SuppressionEntry | undefined> {
    const wanted = idOrValue.trim().toLowerCase();
    const entry = [...this.byKey.values()].find((e) => e.id === wanted || e.value === wanted);
    if (!entry) return undefined;
    await this.store.writeSuppression(entry.kind, entry.value, undefined);
    this.byKey.delete(`${entry.kind}:${entry.value}`);
    return entry;
  }

  /** Every entry in force, newest first; expired ones are removed on the way. */
  async list(): Promise<SuppressionEntry[]> {
    const now = this.now();
    const expired = [...this.byKey.values()].filter((e) => e.expires !== undefined && e.expires <= now);
    for (const e of expired) {
      await this.store.writeSuppression(e.kind, e.value, undefined);
      this.byKey.delete(`${e.kind}:${e.value}`);
    }
    return [...this.byKey.values()].sort((a, b) => b.created - a.created || a.value.localeCompare(b.value));
  }
}
