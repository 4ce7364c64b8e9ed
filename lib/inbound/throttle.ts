/**
 * Rate limits per client, in tiers, so that one sender cannot take the receiver from everyone
 * else: new connections and transactions per minute from one IP (an IPv6 client by its /64),
 * transactions per minute from one sender's registrable domain, messages per minute into one
 * inbox. Each tier is a sliding minute; 0 turns a tier off.
 *
 * The sender's domain is counted by its registrable domain (the public-suffix list, from tldts),
 * so mail from a.b.example.test and from 20,000 other subdomains of example.test is one sender:
 * that is how Mailsac was flooded (a flood of that kind took Mailsac down).
 *
 * Memory is bounded: a tier tracks at most MAX_KEYS keys per minute, and a key lives two minutes.
 */
import { getDomain } from 'tldts';
import { clientKey, networkMatcher } from '../config/net.js';
import type { InboundConfig } from '../config/schema.js';
import { SmtpError } from '../errors/smtp-error.js';

/** Keys one tier tracks per minute; past it, new keys are not limited that minute. */
const MAX_KEYS = 200_000;
const WINDOW_MS = 60_000;

export const THROTTLE_TIERS = ['connections_per_ip', 'messages_per_ip', 'messages_per_sender_domain', 'messages_per_inbox'] as const;
export type ThrottleTier = (typeof THROTTLE_TIERS)[number];

/**
 * A sliding-minute counter per key, kept as two fixed minutes: the count is this minute's plus
 * the part of the last minute that still lies within the window (the usual two-bucket estimate).
 */
export class RateWindow {
  private current = new Map<string, number>();
  private previous = new Map<string, number>();
  private currentStart: number;

  constructor(
    private readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {
    this.currentStart = Math.floor(now() / WINDOW_MS) * WINDOW_MS;
  }

  /** Counts one event for `key`; false (and not counted) when the key is over its limit. */
  take(key: string): boolean {
    if (this.limit <= 0) return true;
    const now = this.now();
    this.roll(now);
    const mine = this.current.get(key) ?? 0;
    const weight = 1 - (now - this.currentStart) / WINDOW_MS;
    const estimate = mine + (this.previous.get(key) ?? 0) * weight;
    if (estimate >= this.limit) return false;
    if (mine > 0 || this.current.size < MAX_KEYS) this.current.set(key, mine + 1);
    return true;
  }

  private roll(now: number): void {
    const start = Math.floor(now / WINDOW_MS) * WINDOW_MS;
    if (start === this.currentStart) return;
    this.previous = start - this.currentStart === WINDOW_MS ? this.current : new Map();
    this.current = new Map();
    this.currentStart = start;
  }
}

export class Throttle {
  private readonly isExempt: (ip: string | undefined) => boolean;
  private readonly connections: RateWindow;
  private readonly perIp: RateWindow;
  private readonly perSenderDomain: RateWindow;
  private readonly perInbox: RateWindow;
  /** refusals per tier, for metrics */
  readonly refused: Record<ThrottleTier, number> = { connections_per_ip: 0, messages_per_ip: 0, messages_per_sender_domain: 0, messages_per_inbox: 0 };

  constructor(config: InboundConfig['throttle'], now: () => number = Date.now) {
    this.isExempt = networkMatcher(config.exempt);
    this.connections = new RateWindow(config.connectionsPerMinutePerIp, now);
    this.perIp = new RateWindow(config.messagesPerMinutePerIp, now);
    this.perSenderDomain = new RateWindow(config.messagesPerMinutePerSenderDomain, now);
    this.perInbox = new RateWindow(config.messagesPerMinutePerInbox, now);
  }

  exempt(ip: string | undefined): boolean {
    return this.isExempt(ip);
  }

  /** A new connection from `ip`: an error when it is one too many this minute. */
  connection(ip: string | undefined): SmtpError | undefined {
    if (this.exempt(ip) || this.connections.take(clientKey(ip))) return undefined;
    this.refused.connections_per_ip++;
    return SmtpError.rateLimited('connections per minute from your address');
  }

  /** A new transaction (MAIL FROM) from `ip` for `sender`. */
  transaction(ip: string | undefined, sender: string): SmtpError | undefined {
    if (this.exempt(ip)) return undefined;
    if (!this.perIp.take(clientKey(ip))) {
      this.refused.messages_per_ip++;
      return SmtpError.rateLimited('messages per minute from your address');
    }
    const domain = registrableDomain(sender);
    if (domain && !this.perSenderDomain.take(domain)) {
      this.refused.messages_per_sender_domain++;
      return SmtpError.rateLimited(`messages per minute from ${domain}`);
    }
    return undefined;
  }

  /** A message for `inbox` from `ip`. */
  inbox(ip: string | undefined, inbox: string): SmtpError | undefined {
    if (this.exempt(ip) || this.perInbox.take(inbox)) return undefined;
    this.refused.messages_per_inbox++;
    return SmtpError.inboxRateLimited(inbox);
  }
}

/** example.test for a.b.example.test; the domain itself when it has no public suffix; '' for the null sender. */
export function registrableDomain(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  const domain = address.slice(at + 1).toLowerCase();
  return getDomain(domain) ?? domain;
}
