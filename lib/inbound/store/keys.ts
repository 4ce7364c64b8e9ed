/**
 * Every LevelDB key layout of the inbox store, in one place. Keys are UTF-8 strings ordered
 * byte-wise; numbers are fixed-width hex; an inbox name (an address, which may hold ':') is
 * URI-encoded. Message ids sort by arrival (see ids.ts), so every family keyed by id is in
 * arrival order too.
 *
 *   e:<id>                    envelope: who sent it to which inboxes, when, from where (JSON);
 *                             written by the commit, so "e: exists" means "the message is stored"
 *   r:<id>:<n>                raw message chunk n (6 hex digits), the bytes as received
 *   p:<id>                    the message waits to be parsed (written by the commit)
 *   m:<id>                    the parsed message: headers, text, HTML, attachments, links, auth (JSON)
 *   s:<id>                    the parsed summary a listing shows (JSON)
 *   q:<id>                    what search reads: subject, addresses, decoded text, in lower case (JSON)
 *   i:<inbox>:<id>            the message is in that inbox (JSON: the recipients it came for, tags, read)
 *   k:<target>                a private inbox or domain: the hash of its key (JSON)
 *   x:<alias>                 an altinbox alias: the address it delivers to
 *   c:<name>                  a value the store keeps for itself (the alias secret)
 *   w:<event id>              a webhook notification not delivered yet (JSON)
 *
 * r: chunks without an e: key are leftovers of a receipt that did not finish, collected later.
 * Attachments are not stored apart: their bytes are decoded from the raw message when asked for
 * (parse/attachment-bytes.ts), so a message is on disk once.
 */

export const PREFIX = {
  envelope: 'e:',
  raw: 'r:',
  pending: 'p:',
  meta: 'm:',
  summary: 's:',
  search: 'q:',
  inbox: 'i:',
  reservation: 'k:',
  alias: 'x:',
  setting: 'c:',
  webhook: 'w:',
} as const;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const enc = (s: string) => encodeURIComponent(s);

export const keys = {
  envelope: (id: string) => `e:${id}`,
  raw: (id: string, n: number) => `r:${id}:${hex(n, 6)}`,
  rawRange: (id: string) => ({ gte: `r:${id}:`, lt: `r:${id};` }),
  pending: (id: string) => `p:${id}`,
  meta: (id: string) => `m:${id}`,
  summary: (id: string) => `s:${id}`,
  search: (id: string) => `q:${id}`,
  inbox: (inbox: string, id: string) => `i:${enc(inbox)}:${id}`,
  /** an inbox's entries; with `before`, only those older than that id */
  inboxRange: (inbox: string, before?: string) => ({ gt: `i:${enc(inbox)}:`, lt: before ? `i:${enc(inbox)}:${before}` : `i:${enc(inbox)};` }),
  reservation: (target: string) => `k:${enc(target)}`,
  alias: (alias: string) => `x:${enc(alias)}`,
  setting: (name: string) => `c:${name}`,
  webhook: (id: string) => `w:${id}`,
  /** every key of a family */
  allOf: (prefix: string) => ({ gte: prefix, lt: prefix.slice(0, -1) + ';' }),
  /** envelopes of messages with ids in [from, to) (id prefixes or whole ids) */
  envelopesBetween: (from: string, to: string) => ({ gte: `e:${from}`, lt: `e:${to}` }),
  /** envelopes of messages that arrived before the id prefix `before` */
  envelopesBefore: (before: string) => ({ gte: PREFIX.envelope, lt: `e:${before}` }),
};

/** The id in an `i:<inbox>:<id>` key. */
export function idOfInboxKey(key: string): string {
  return key.slice(key.lastIndexOf(':') + 1);
}

/** The id in an `r:<id>:<n>` key. */
export function idOfRawKey(key: string): string {
  return key.slice(2, key.lastIndexOf(':'));
}
