/**
 * Chooses the sending zone of each recipient at accept time. First match wins:
 * the X-Sending-Zone header, a zone's routingHeaders, its senderDomains, its recipientDomains,
 * else "default". A zone named in the header that does not exist is the client's error.
 */
import type { Config } from '../config/schema.js';
import { SmtpError } from '../errors/smtp-error.js';
import type { MessageHeaders } from '../message/headers.js';

export const ZONE_HEADER = 'x-sending-zone';

export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at === -1 ? '' : address.slice(at + 1).toLowerCase();
}

export class ZoneSelector {
  private readonly zones: [string, Config['zones'][string]][];

  constructor(config: Config) {
    this.zones = Object.entries(config.zones);
  }

  has(zone: string): boolean {
    return this.zones.some(([name]) => name === zone);
  }

  /** Every zone's name, sorted. */
  names(): string[] {
    return this.zones.map(([name]) => name).sort();
  }

  /**
   * The zone for every recipient. Reads (and removes) X-Sending-Zone, so the header does not
   * travel on to the recipient.
   */
  select(headers: MessageHeaders, from: string, recipients: readonly string[]): string[] {
    const named = headers.getFirst(ZONE_HEADER).trim();
    headers.remove(ZONE_HEADER);
    if (named) {
      if (!this.has(named)) throw SmtpError.unknownZone(named);
      return recipients.map(() => named);
    }
    const byHeader = this.byRoutingHeaders(headers);
    if (byHeader) return recipients.map(() => byHeader);
    const senderDomain = domainOf(from);
    const bySender = senderDomain ? this.zones.find(([, z]) => z.senderDomains.some((d) => d.toLowerCase() === senderDomain)) : undefined;
    if (bySender) return recipients.map(() => bySender[0]);
    return recipients.map((rcpt) => {
      const domain = domainOf(rcpt);
      const match = this.zones.find(([, z]) => z.recipientDomains.some((d) => d.toLowerCase() === domain));
      return match ? match[0] : 'default';
    });
  }

  private byRoutingHeaders(headers: MessageHeaders): string | undefined {
    for (const [name, zone] of this.zones) {
      for (const [header, value] of Object.entries(zone.routingHeaders)) {
        const values = headers.get(header).map((line) => line.slice(line.indexOf(':') + 1).trim().toLowerCase());
        if (values.includes(value.trim().toLowerCase())) return name;
      }
    }
    return undefined;
  }
}
