/**
 * Private inboxes: an address, or a whole domain ("example.test", "*.example.test"), reserved with
 * a key. Mail for it is received as for any inbox, but reading it — listing, a message, its parts,
 * its live events, POP3 — needs the key; without it the inbox reads as empty and its events are
 * not sent. Everything else stays public, as on the disposable-inbox services.
 *
 * A key is 256 random bits, shown once when the reservation is made; the store keeps its sha256
 * only (a fast hash is enough for a key that cannot be guessed), and compares in constant time.
 * The reservations are few (an operator makes them) and all kept in memory.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { asciiDomain, domainMatcher } from '../config/domains.js';
import type { SideRecords } from './store/side-records.js';
import type { Reservation } from './store/types.js';

/** Reservations kept at most (an operator's list, not a per-user table). */
export const MAX_RESERVATIONS = 100_000;

const hash = (key: string) => createHash('sha256').update(key).digest('hex');

export class PrivateInboxes {
  private readonly byTarget = new Map<string, Reservation>();
  /** the domain reservations (few), with their matchers */
  private domains: { reservation: Reservation; matches: (domain: string) => boolean }[] = [];

  constructor(private readonly store: SideRecords) {}

  async load(): Promise<void> {
    for await (const r of this.store.reservations()) this.byTarget.set(r.target, r);
    this.indexDomains();
  }

  private indexDomains(): void {
    this.domains = [...this.byTarget.values()]
      .filter((r) => !r.target.includes('@'))
      .map((reservation) => ({ reservation, matches: domainMatcher([reservation.target]) }));
  }

  /** The canonical form of a target: an address or a domain in lower case, or undefined. */
  static target(value: string): string | undefined {
    const v = value.trim().toLowerCase();
    if (v.includes('@')) {
      const at = v.lastIndexOf('@');
      const domain = asciiDomain(v.slice(at + 1));
      return at > 0 && domain && v.length <= 320 ? `${v.slice(0, at)}@${domain}` : undefined;
    }
    const wildcard = v.startsWith('*.');
    const domain = asciiDomain(wildcard ? v.slice(2) : v);
    return domain && /^[a-z0-9.-]+$/.test(domain) && domain.includes('.') ? (wildcard ? `*.${domain}` : domain) : undefined;
  }

  /** Reserves `target` with a new key; returns the key (the only time it is shown). */
  async reserve(target: string): Promise<string> {
    if (!this.byTarget.has(target) && this.byTarget.size >= MAX_RESERVATIONS) throw new Error(`at most ${MAX_RESERVATIONS} private inboxes and domains`);
    const key = randomBytes(32).toString('base64url');
    const reservation: Reservation = { target, keyHash: hash(key), created: Date.now() };
    await this.store.setReservation(target, reservation);
    this.byTarget.set(target, reservation);
    this.indexDomains();
    return key;
  }

  /** Makes `target` public again; false when it was not reserved. */
  async release(target: string): Promise<boolean> {
    if (!this.byTarget.has(target)) return false;
    await this.store.setReservation(target, undefined);
    this.byTarget.delete(target);
    this.indexDomains();
    return true;
  }

  list(): { target: string; created: string }[] {
    return [...this.byTarget.values()].map((r) => ({ target: r.target, created: new Date(r.created).toISOString() }));
  }

  /** The reservations an inbox falls under: its own address, its domain, a wildcard above it. */
  private covering(inbox: string): Reservation[] {
    if (!this.byTarget.size) return [];
    const out: Reservation[] = [];
    const own = this.byTarget.get(inbox);
    if (own) out.push(own);
    const domain = inbox.slice(inbox.lastIndexOf('@') + 1);
    for (const d of this.domains) if (d.matches(domain)) out.push(d.reservation);
    return out;
  }

  isPrivate(inbox: string): boolean {
    return this.covering(inbox).length > 0;
  }

  /** May a holder of `key` read `inbox`? Any inbox nobody reserved: yes. */
  allows(inbox: string, key: string | undefined): boolean {
    const covering = this.covering(inbox);
    if (!covering.length) return true;
    if (!key) return false;
    const given = Buffer.from(hash(key), 'hex');
    return covering.some((r) => timingSafeEqual(given, Buffer.from(r.keyHash, 'hex')));
  }
}
