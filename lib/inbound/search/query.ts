/**
 * The inbox search language, Mailpit's in spirit:
 *
 *   reset password                  bare words: each must appear (subject, text, from, to)
 *   "reset your password"           a phrase, as written
 *   to:alice@sluice.test            a recipient (envelope or To/Cc), or a part of one: to:@sluice.test
 *   from:shop.test                  the sender (envelope or From), or a part of it
 *   subject:welcome  subject:"a b"  in the subject
 *   has:attachment                  with at least one attachment
 *   before:2026-12-03  after:2026-12-01T10:00:00Z   received before / at or after (a day is its start, UTC)
 *   -word  -from:x                  leaves out what matches
 *
 * Matching ignores case and is on the decoded text, so a quoted-printable or base64 body is
 * found by its plain words. Everything here is pure: parse a query, then ask it of a message.
 */

import type { InboundEnvelope, ParsedMessage } from '../store/types.js';

/** Text kept for search per message: sign-up, reset and OTP mail says what matters early. */
export const SEARCH_TEXT_CHARS = 32_768;

export interface SearchDoc {
  subject: string;
  /** the decoded text (from the HTML when there is no text part), possibly cut */
  text: string;
  /** envelope sender and From addresses */
  from: string[];
  /** envelope recipients, To and Cc addresses */
  to: string[];
  attachments: number;
  receivedAt: number;
}

type Term =
  | { kind: 'word'; value: string; not: boolean }
  | { kind: 'to' | 'from' | 'subject'; value: string; not: boolean }
  | { kind: 'has'; value: 'attachment'; not: boolean };

export interface Query {
  terms: Term[];
  /** received at or after (ms) */
  after?: number;
  /** received before (ms) */
  before?: number;
  /** the recipient of a `to:` term that names one whole address: the search can go by that inbox */
  inbox?: string;
}

export class QueryError extends Error {}

/** Parses a query; throws QueryError with a sentence a person understands. */
export function parseQuery(input: string): Query {
  const q: Query = { terms: [] };
  const re = /(-?)(?:([a-z]+):)?(?:"([^"]*)"|(\S+))/gi;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(input))) {
    any = true;
    const not = m[1] === '-';
    const field = m[2]?.toLowerCase();
    const value = (m[3] ?? m[4] ?? '').toLowerCase();
    if (!field) {
      if (/^[a-z]+:$/.test(value)) throw new QueryError(`${value} needs a value`);
      if (value) q.terms.push({ kind: 'word', value, not });
      continue;
    }
    if (!value) throw new QueryError(`${field}: needs a value`);
    switch (field) {
      case 'to':
      case 'from':
      case 'subject':
        q.terms.push({ kind: field, value, not });
        if (field === 'to' && !not && /^[^@\s]+@[^@\s]+$/.test(value)) q.inbox ??= value;
        break;
      case 'has':
        if (value !== 'attachment' && value !== 'attachments') throw new QueryError(`has:${value}: only has:attachment is known`);
        q.terms.push({ kind: 'has', value: 'attachment', not });
        break;
      case 'before':
      case 'after': {
        const t = dateOf(value);
        if (t === undefined) throw new QueryError(`${field}:${value}: expected a date like 2026-12-03 or 2026-12-03T10:00:00Z`);
        if (not) throw new QueryError(`-${field}: use the other of before: and after:`);
        if (field === 'before') q.before = Math.min(q.before ?? Infinity, t);
        else q.after = Math.max(q.after ?? 0, t);
        break;
      }
      default:
        throw new QueryError(`${field}: is not a search field (to, from, subject, has, before, after)`);
    }
  }
  if (!any) throw new QueryError('the query is empty');
  return q;
}

function dateOf(value: string): number | undefined {
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  return Number.isFinite(t) ? t : undefined;
}

/** What search keeps of a message: lower case, the text cut at SEARCH_TEXT_CHARS. */
export function searchDoc(envelope: InboundEnvelope, parsed: ParsedMessage): SearchDoc {
  const lower = (s: string) => s.toLowerCase();
  return {
    subject: lower(parsed.subject),
    text: lower((parsed.text ?? '').replace(/\s+/g, ' ').slice(0, SEARCH_TEXT_CHARS)),
    from: [...new Set([envelope.from, parsed.from?.address ?? ''].filter(Boolean).map(lower))],
    to: [...new Set([...envelope.rcpts.flatMap((r) => [r.address, r.inbox]), ...parsed.to.map((a) => a.address), ...parsed.cc.map((a) => a.address)].map(lower))],
    attachments: parsed.attachments.length,
    receivedAt: envelope.receivedAt,
  };
}

/** Does the message match every term of the query? */
export function matches(q: Query, doc: SearchDoc): boolean {
  if (q.after !== undefined && doc.receivedAt < q.after) return false;
  if (q.before !== undefined && doc.receivedAt >= q.before) return false;
  return q.terms.every((t) => holds(t, doc) !== t.not);
}

function holds(t: Term, doc: SearchDoc): boolean {
  switch (t.kind) {
    case 'word':
      return doc.subject.includes(t.value) || doc.text.includes(t.value) || doc.from.some((a) => a.includes(t.value)) || doc.to.some((a) => a.includes(t.value));
    case 'subject':
      return doc.subject.includes(t.value);
    case 'from':
      return doc.from.some((a) => a.includes(t.value));
    case 'to':
      return doc.to.some((a) => a.includes(t.value));
    case 'has':
      return doc.attachments > 0;
  }
}
