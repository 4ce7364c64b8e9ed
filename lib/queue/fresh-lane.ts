/**
 * The fresh lane: messages just committed, waiting in memory for a worker of their zone, so fresh
 * mail goes out without reading LevelDB (the whole path is described in scheduler.ts). Bounded by count per zone and by bytes in all (an offer holds its header block,
 * up to queue.maxHeaderSize, and its rows); an offer that does not fit is left to the disk scan.
 *
 * Invariant: a row is "offered" from its add until it is granted, forgotten (its message was
 * deleted) or given back to the disk (its domain may not start now); the scan skips offered rows,
 * so a row is never found both here and on disk.
 */
import { rowKey } from './leases.js';
import type { DeliveryRow, MessageMeta } from './types.js';

/** Fresh offers kept per zone at most; past this, new mail is found by the disk scan. */
export const MAX_FRESH = 2000;
/**
 * Bytes of fresh offers kept in all zones together. A count alone let 2,000 offers per zone
 * hold a header block of up to queue.maxHeaderSize (1 MB) each; typical mail (a few KB of
 * headers) stays under the count long before this.
 */
export const MAX_FRESH_BYTES = 16 * 1024 * 1024;
/** What an offer and one of its rows cost in memory besides the header block and addresses. */
const OFFER_OVERHEAD_BYTES = 1024;
const ROW_OVERHEAD_BYTES = 256;

export function offerBytes(meta: MessageMeta, rows: readonly DeliveryRow[]): number {
  let bytes = OFFER_OVERHEAD_BYTES + meta.headers.length;
  for (const r of rows) bytes += ROW_OVERHEAD_BYTES + r.recipient.length;
  return bytes;
}

interface FreshOffer {
  meta: MessageMeta;
  rows: DeliveryRow[];
  /** when it was offered (the scheduler's clock) */
  addedAt: number;
  /** its estimated size in memory (offerBytes) */
  bytes: number;
}

/** How the lane hands an offer's rows to a worker (the scheduler's claim and grant). */
export interface FreshServe<W> {
  maxRows: number;
  /** the workers waiting; `claim` takes one out */
  waiters: W[];
  /** a waiter for a new delivery to `domain`, its connection counted, or undefined (limits) */
  claim(domain: string): W | undefined;
  /** leases `rows` to `waiter` and hands them over */
  grant(waiter: W, domain: string, meta: MessageMeta, rows: DeliveryRow[]): void;
  /** only offers made at or before this time (those that waited long enough), oldest first */
  addedUpTo?: number;
  /** at most this many jobs in this call */
  maxJobs?: number;
}

export class FreshLane {
  private readonly zones = new Map<string, FreshOffer[]>();
  private readonly offered = new Set<string>();
  private bytes = 0;

  /** Keeps `due` rows of one zone of a just-committed message; false when they do not fit. */
  add(zone: string, meta: MessageMeta, due: DeliveryRow[], nowMs = 0): boolean {
    const list = this.list(zone);
    const bytes = offerBytes(meta, due);
    if (list.length >= MAX_FRESH || this.bytes + bytes > MAX_FRESH_BYTES) return false;
    list.push({ meta, rows: due, bytes, addedAt: nowMs });
    this.bytes += bytes;
    for (const r of due) this.offered.add(rowKey(r.id, r.seq));
    return true;
  }

  /** A message was deleted: its offers must not be handed out. */
  forget(id: string): void {
    for (const [zone, list] of this.zones) {
      this.zones.set(
        zone,
        list.filter((o) => {
          if (o.meta.id !== id) return true;
          for (const r of o.rows) this.offered.delete(rowKey(r.id, r.seq));
          this.bytes -= o.bytes;
          return false;
        }),
      );
    }
  }

  isOffered(key: string): boolean {
    return this.offered.has(key);
  }

  /** Rows granted (from here or by a scan): no longer offered. */
  taken(rows: readonly DeliveryRow[]): void {
    for (const r of rows) this.offered.delete(rowKey(r.id, r.seq));
  }

  get totalBytes(): number {
    return this.bytes;
  }

  pending(zone: string): number {
    return this.zones.get(zone)?.length ?? 0;
  }

  /** When the oldest offer of `zone` was made, if it has any. */
  oldestAt(zone: string): number | undefined {
    return this.zones.get(zone)?.[0]?.addedAt;
  }

  /**
   * Hands offers to waiting workers, oldest first, one job per message and domain (up to
   * maxRows). Rows granted meanwhile by a scan are skipped. Rows whose domain may not start now
   * while workers wait are given back to the disk: returns true then (the caller marks the disk
   * to scan when a slot frees). When every worker is busy the rest waits here.
   */
  serve<W>(zone: string, s: FreshServe<W>): boolean {
    const list = this.list(zone);
    let blocked = false;
    let jobs = 0;
    const maxJobs = s.maxJobs ?? Infinity;
    while (list.length && s.waiters.length && jobs < maxJobs) {
      const offer = list[0]!;
      if (s.addedUpTo !== undefined && offer.addedAt > s.addedUpTo) break;
      const byDomain = new Map<string, DeliveryRow[]>();
      for (const row of offer.rows) {
        if (!this.offered.has(rowKey(row.id, row.seq))) continue;
        const rows = byDomain.get(row.domain);
        if (rows) rows.push(row);
        else byDomain.set(row.domain, [row]);
      }
      const left: DeliveryRow[] = [];
      for (const [domain, rows] of byDomain) {
        for (let i = 0; i < rows.length; i += s.maxRows) {
          const part = rows.slice(i, i + s.maxRows);
          const waiter = s.waiters.length && jobs < maxJobs ? s.claim(domain) : undefined;
          if (waiter === undefined) {
            if (s.waiters.length && jobs < maxJobs) {
              // the domain's limits say not now: its rows wait on disk for a freed slot
              this.taken(part);
              blocked = true;
            } else {
              left.push(...part);
            }
            continue;
          }
          s.grant(waiter, domain, offer.meta, part);
          jobs++;
        }
      }
      if (left.length) {
        // every worker is busy (or this call's jobs are used up): the rest of this message waits
        // here for the next one
        offer.rows = left;
        const bytes = offerBytes(offer.meta, left);
        this.bytes += bytes - offer.bytes;
        offer.bytes = bytes;
        break;
      }
      list.shift();
      this.bytes -= offer.bytes;
    }
    return blocked;
  }

  private list(zone: string): FreshOffer[] {
    let list = this.zones.get(zone);
    if (!list) this.zones.set(zone, (list = []));
    return list;
  }
}
