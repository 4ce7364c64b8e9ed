/**
 * The closed list of reply categories. A delivery failure is put in exactly one, kept on the
 * delivery row and shown in logs, DSNs and webhooks; the failure policy reads it too (a
 * `blocklist` reply makes the next attempt go out from another address of the zone's pool).
 * REPLY_CATEGORIES is the catalogue: docs and tests list the categories from it.
 */
export const REPLY_CATEGORIES = [
  'greylist',
  'blocklist',
  'mailbox-full',
  'unknown-user',
  'policy',
  'spam',
  'dns',
  'network',
  'tls',
  'rate-limit',
  'message-size',
  'protocol',
  'other',
] as const;

export type ReplyCategory = (typeof REPLY_CATEGORIES)[number];

export interface CategoryInfo {
  /** what the category means, for docs and `sluice check-bounce --help` */
  description: string;
  /** the short message used when no rule gave one */
  message: string;
  /** subject.detail of the enhanced status reported when the remote gave none, e.g. '1.1' */
  statusDetail: string;
}

export const CATEGORY_INFO: { readonly [C in ReplyCategory]: CategoryInfo } = {
  greylist: { description: 'the receiver greylists: an unknown sender must come back later', message: 'Greylisted, will try again', statusDetail: '7.1' },
  blocklist: { description: 'our sending IP is on a blocklist or banned by the receiver', message: 'Sending IP is blocklisted', statusDetail: '7.1' },
  'mailbox-full': { description: 'the recipient mailbox is over its quota', message: 'Recipient mailbox is full', statusDetail: '2.2' },
  'unknown-user': { description: 'the recipient address does not exist or is disabled', message: 'Recipient address does not exist', statusDetail: '1.1' },
  policy: { description: 'refused by the receiver policy: authentication (SPF, DKIM, DMARC), relaying, sender rules', message: 'Refused by the receiver policy', statusDetail: '7.1' },
  spam: { description: 'the message or its sender domain was judged spam, malware or phishing', message: 'Message was judged to be spam', statusDetail: '7.1' },
  dns: { description: 'a DNS problem: the domain does not exist, has no mail host, or a lookup failed', message: 'DNS lookup failed', statusDetail: '4.4' },
  network: { description: 'the connection failed: refused, timed out, reset or closed', message: 'Connection failed', statusDetail: '4.2' },
  tls: { description: 'TLS was required or failed', message: 'TLS failed', statusDetail: '7.5' },
  'rate-limit': { description: 'the receiver wants us to slow down: too many messages, connections or recipients', message: 'Rate limited by the receiver', statusDetail: '4.5' },
  'message-size': { description: 'the message is larger than the receiver takes', message: 'Message is too large for the receiver', statusDetail: '3.4' },
  protocol: { description: 'an SMTP protocol error: unexpected or malformed reply, bad command sequence', message: 'SMTP protocol error', statusDetail: '5.0' },
  other: { description: 'anything else', message: 'Delivery failed', statusDetail: '0.0' },
};

export function isReplyCategory(value: string): value is ReplyCategory {
  return (REPLY_CATEGORIES as readonly string[]).includes(value);
}

/**
 * The category an RFC 3463 enhanced status points to, for replies no rule matched.
 * `subjectDetail` is the part after the class digit, e.g. '1.1' for 5.1.1.
 */
export function categoryOfStatus(subjectDetail: string): ReplyCategory {
  const [subject, detail] = subjectDetail.split('.').map(Number) as [number, number];
  switch (subject) {
    case 1:
      if (detail === 2 || detail === 10) return 'dns'; // bad destination system; null MX (RFC 7505)
      if (detail === 7 || detail === 8) return 'policy'; // bad sender address or its domain
      return detail === 0 ? 'other' : 'unknown-user';
    case 2:
      if (detail === 2) return 'mailbox-full';
      if (detail === 3) return 'message-size';
      return detail === 1 ? 'unknown-user' : 'other'; // 2.1: mailbox disabled
    case 3:
      return detail === 4 ? 'message-size' : 'other';
    case 4:
      if (detail === 3 || detail === 4) return 'dns'; // directory server failure; unable to route
      if (detail === 5) return 'rate-limit'; // mail system congestion
      return detail === 6 ? 'other' : 'network';
    case 5:
      return 'protocol';
    case 7:
      if (detail === 4 || detail === 5 || detail === 10 || detail === 11) return 'tls';
      return 'policy';
    default:
      return 'other';
  }
}
