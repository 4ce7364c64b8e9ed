/**
 * One pass over the due part of a zone's index (QueueStore.scanDue), grouping rows into jobs for
 * the waiting workers. A job is one message to one domain: the due rows of a message are next to
 * each other in the index (same due time), with their domains mixed in recipient order, so each
 * domain of the message being read gets its own group (a message to a@x, b@y, c@x makes one
 * transaction to x with both, not two), of at most maxRows rows.
 *
 * A pass reads at most `budget` entries; when it stops there the caller goes on later from the
 * returned cursor, so rows further on are reached too (a backlog that cannot start, such as a
 * rate-limited domain, must not hide every other domain queued behind it).
 *
 * Pure over the entries it is given: rows taken elsewhere (leased, offered) and the domain limits
 * are asked through `isTaken` and `claim`.
 */
import type { DueEntry } from './codec.js';

export interface DueGroup<W> {
  id: string;
  domain: string;
  keys: { seq: number; due: number }[];
  waiter: W;
}

export interface DueScanOptions<W> {
  budget: number;
  maxRows: number;
  /** waiters this pass may hand work to; `claim` takes them out */
  free: W[];
  /** the row is leased or waits in the fresh lane */
  isTaken(id: string, seq: number): boolean;
  /** a waiter for a new delivery to `domain` with its connection counted, or undefined (limits) */
  claim(domain: string, free: W[]): W | undefined;
}

export interface DueScanResult<W> {
  groups: DueGroup<W>[];
  /** stopped at the budget, before the end of the due range */
  unread: boolean;
  /** where the next pass goes on from, when `unread` */
  cursor: string | undefined;
  /** stopped, or passed rows over, for lack of a free waiter */
  stoppedEarly: boolean;
  /** due rows were passed over because their domain may not start now */
  blocked: boolean;
}

export async function scanDueRows<W>(entries: AsyncIterable<DueEntry>, opts: DueScanOptions<W>): Promise<DueScanResult<W>> {
  const { free } = opts;
  const groups: DueGroup<W>[] = [];
  /** the groups of the message being read, by domain */
  let open = new Map<string, DueGroup<W>>();
  let openId: string | undefined;
  const blockedDomains = new Set<string>();
  let scanned = 0;
  let lastCursor: string | undefined;
  let cursor: string | undefined;
  let unread = false;
  let stoppedEarly = false;
  for await (const { id, seq, dueMs, domain, cursor: at } of entries) {
    if (++scanned > opts.budget) {
      cursor = lastCursor;
      unread = true;
      break;
    }
    lastCursor = at;
    if (opts.isTaken(id, seq)) continue;
    if (id !== openId) {
      if (!free.length) {
        stoppedEarly = true;
        break;
      }
      open = new Map();
      openId = id;
    }
    const g = open.get(domain);
    if (g && g.keys.length < opts.maxRows) {
      g.keys.push({ seq, due: dueMs });
      continue;
    }
    if (!free.length) {
      stoppedEarly = true;
      continue;
    }
    if (blockedDomains.has(domain)) continue;
    // the connection is counted now, so the rest of this pass sees it
    const waiter = opts.claim(domain, free);
    if (waiter === undefined) {
      blockedDomains.add(domain);
      continue;
    }
    const next: DueGroup<W> = { id, domain, keys: [{ seq, due: dueMs }], waiter };
    open.set(domain, next);
    groups.push(next);
  }
  return { groups, unread, cursor, stoppedEarly, blocked: blockedDomains.size > 0 };
}
