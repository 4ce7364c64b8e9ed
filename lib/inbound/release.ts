/**
 * Release: a stored message handed to Sluice's own outbound queue, through the one ingest path
 * every message takes (ingest adds its Received header, the hooks run, zones are chosen), for
 * recipients the operator allows in `inbound.release.allow`. Useful for looking at a test mail in
 * a real mail client. The outcome (the queue id, or why not) is kept with the message.
 *
 * Allowlist entries: an address ("qa@example.test"), a domain ("example.test", "@example.test")
 * or every subdomain of one ("*.example.test"). An empty list: release is off.
 */
import { checkAddress } from '../accept/address.js';
import { asciiDomain, domainMatcher } from '../config/domains.js';
import type { InboundEnvelope, Release } from './store/types.js';

/** Where a released message goes: the outbound ingest, as the master wires it. */
export type ReleaseSink = (r: { from: string; to: string[]; source: AsyncIterable<Buffer> }) => Promise<{ id: string }>;

export class ReleasePolicy {
  private readonly addresses = new Set<string>();
  private readonly domains: (domain: string) => boolean;
  private readonly any: boolean;

  constructor(
    allow: readonly string[],
    /** the envelope sender of released mail; '' keeps the original's */
    private readonly from: string,
  ) {
    const domains: string[] = [];
    for (const entry of allow.map((a) => a.trim().toLowerCase())) {
      if (entry.includes('@') && !entry.startsWith('@')) this.addresses.add(entry);
      else domains.push(entry.replace(/^@/, ''));
    }
    this.domains = domainMatcher(domains);
    this.any = allow.length > 0;
  }

  get enabled(): boolean {
    return this.any;
  }

  /** Why `address` may not be a release recipient, or undefined when it may. */
  refusal(address: string): string | undefined {
    try {
      checkAddress(address, false);
    } catch (err) {
      return (err as Error).message;
    }
    const lower = address.toLowerCase();
    const domain = asciiDomain(lower.slice(lower.lastIndexOf('@') + 1));
    if (this.addresses.has(lower) || this.domains(domain)) return undefined;
    return `${address} is not in inbound.release.allow`;
  }

  /** The envelope sender for a release of this message. */
  senderFor(envelope: InboundEnvelope): string {
    return this.from || envelope.from;
  }
}

/** A release as it is kept with the message. */
export function releaseRecord(to: string[], outcome: { queueId: string } | { error: string }): Release {
  return { at: new Date().toISOString(), to, ...outcome };
}
