/**
 * Counts the recipients a POST /send body names before anything parses them in full, so that a
 * body of millions of addresses costs the parse of a few hundred before its 400, wherever it
 * runs (the JSON worker for large bodies, the route for small ones).
 *
 * Each group of fields is capped on its own at maxRecipients: the recipients (to, cc, bcc), the
 * envelope's (envelope.to, .cc, .bcc: they replace the first group, which then still becomes
 * headers), and replyTo. A repeated address counts once, as it does in the envelope. Strings are
 * parsed with nodemailer's addressparser one at a time, and the count stops as soon as it passes
 * the cap; a string longer than the schema allows is refused here already (one long parse).
 */
import addressparser from 'nodemailer/lib/addressparser';
import { LINE_MAX_CHARS } from './send-schema.js';

type Json = Record<string, unknown>;

const GROUPS: { label: string; fields: (body: Json) => [string, unknown][] }[] = [
  { label: 'to', fields: (b) => [['to', b.to], ['cc', b.cc], ['bcc', b.bcc]] },
  {
    label: 'envelope.to',
    fields: (b) => {
      const env = isObject(b.envelope) ? b.envelope : {};
      return [['envelope.to', env.to], ['envelope.cc', env.cc], ['envelope.bcc', env.bcc]];
    },
  },
  { label: 'replyTo', fields: (b) => [['replyTo', b.replyTo]] },
];

/** Why the body names too many recipients, or undefined when it does not. */
export function recipientProblem(body: unknown, maxRecipients: number): string | undefined {
  if (!isObject(body)) return undefined;
  for (const group of GROUPS) {
    const seen = new Set<string>();
    const tooMany = () => seen.size > maxRecipients;
    for (const [field, value] of group.fields(body)) {
      const items: unknown[] = Array.isArray(value) ? value : value === undefined ? [] : [value];
      for (const [i, item] of items.entries()) {
        if (typeof item === 'string') {
          if (item.length > LINE_MAX_CHARS) return `${Array.isArray(value) ? `${field}[${i}]` : field}: longer than ${LINE_MAX_CHARS} characters`;
          for (const a of addressparser(item, { flatten: true })) {
            seen.add(a.address ?? '');
            if (tooMany()) break;
          }
        } else if (isObject(item) && typeof item.address === 'string') {
          seen.add(item.address);
        }
        if (tooMany()) return `${group.label}: too many recipients (more than ${maxRecipients}); at most ${maxRecipients} per message`;
      }
    }
  }
  return undefined;
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
