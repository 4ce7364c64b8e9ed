/**
 * The checks POST /send makes on a message after its JSON schema and before nodemailer's
 * composer sees it. Each throws a 400 naming the field.
 *
 * - Content only inline: `path`/`href` anywhere a composer would read a file or fetch a URL
 *   (text, html, amp, watchHtml, icalEvent, raw, attachments, alternatives) is refused. `data:`
 *   URIs in `path` are refused too: they are content, not a file read, but `content` with
 *   `encoding: "base64"` says the same thing, and one rule ("no path, no href") is easier to
 *   trust than a list of exceptions.
 * - No line breaks where a value becomes an address, a message id or a MIME parameter: a CR/LF
 *   there could add a recipient or a header. (Free text like the subject or a custom header
 *   value may contain them; the composer folds them into the header.) Every mailbox named in an
 *   address string must have an address (the composer would drop it silently), and a sender
 *   cannot be a group (the envelope sender would be whatever address hides inside it).
 * - Custom headers: names must be RFC 5322 field names (no space, colon or control), values
 *   marked `prepared` (emitted verbatim) must be single-line, the MIME structure headers are the
 *   composer's own (a second Content-Type would make the part ambiguous), and address headers
 *   at the top are refused because they would add recipients behind the address checks.
 */
import addressparser from 'nodemailer/lib/addressparser';
import { HttpError } from './errors.js';

type Json = Record<string, unknown>;

/** Fields whose value may be a content object with path/href. */
const CONTENT_FIELDS = ['text', 'html', 'amp', 'watchHtml', 'icalEvent', 'raw'] as const;
const LIST_FIELDS = ['attachments', 'alternatives'] as const;
const ADDRESS_FIELDS = ['from', 'sender', 'replyTo', 'to', 'cc', 'bcc'] as const;
/** Where a group would make the envelope sender whatever address hides inside it. */
const SENDER_FIELDS = new Set(['from', 'sender', 'envelope.from']);
/** Single-line scalar fields of a part or content object. */
const PART_LINE_FIELDS = ['contentType', 'cid', 'method'] as const;

/** printable US-ASCII except ':' (RFC 5322 §2.2 ftext) */
const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]{1,76}$/;
const MIME_STRUCTURE_HEADERS = new Set(['content-type', 'content-transfer-encoding', 'mime-version']);
const ADDRESS_HEADERS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-bcc']);
const LINE_BREAK = /[\r\n\x00]/;

export function checkSendMessage(message: Json): void {
  refuseExternalContent(message);
  checkAddressFields(message);
  for (const field of ['messageId', 'inReplyTo', 'references', 'date'] as const) refuseLineBreaks(message[field], field);
  if (typeof message.date === 'string' && !Number.isFinite(Date.parse(message.date))) {
    throw HttpError.badRequest('date: not a date (use RFC 5322 or ISO 8601, e.g. "2026-11-23T10:00:00Z")');
  }
  checkHeaders(message.headers, 'headers', true);
  for (const field of CONTENT_FIELDS) checkPart(message[field], field);
  for (const field of LIST_FIELDS) {
    const list = message[field];
    if (Array.isArray(list)) list.forEach((item, i) => checkPart(item, `${field}[${i}]`));
  }
}

function refuseExternalContent(message: Json): void {
  const check = (value: unknown, where: string) => {
    if (!isObject(value)) return;
    for (const key of ['path', 'href'] as const) {
      if (value[key] !== undefined) {
        throw HttpError.badRequest(
          `${where}.${key}: content must be given inline ("content", as text or base64 with "encoding": "base64"); file paths, URLs and data: URIs are not allowed`,
        );
      }
    }
  };
  for (const field of CONTENT_FIELDS) check(message[field], field);
  for (const field of LIST_FIELDS) {
    const list = message[field];
    if (Array.isArray(list)) list.forEach((item, i) => check(item, `${field}[${i}]`));
  }
}

/**
 * Address fields: single-line, and every mailbox in a string must have an address — the
 * composer would silently drop "garbage" from `to: "a@x.test, garbage"`, sending the message to
 * fewer people than the caller named.
 */
function checkAddressFields(message: Json): void {
  const check = (value: unknown, where: string): void => {
    if (typeof value === 'string') {
      refuseLineBreaks(value, where, 'addresses');
      const empty = addressparser(value, { flatten: true }).find((a) => !a.address);
      if (empty) throw HttpError.badRequest(`${where}: no address in ${JSON.stringify(value.slice(0, 200))}`);
      if (SENDER_FIELDS.has(where) && addressparser(value).some((a) => a.group)) {
        throw HttpError.badRequest(`${where}: a group ("name: addresses;") cannot be a sender`);
      }
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => check(v, `${where}[${i}]`));
    } else if (isObject(value)) {
      // { name, address }: the address itself is checked with the envelope
      refuseLineBreaks(value.address, `${where}.address`, 'addresses');
      refuseLineBreaks(value.name, `${where}.name`, 'addresses');
    }
  };
  for (const field of ADDRESS_FIELDS) check(message[field], field);
  const env = message.envelope;
  if (isObject(env)) for (const key of ['from', 'to', 'cc', 'bcc'] as const) check(env[key], `envelope.${key}`);
}

function refuseLineBreaks(value: unknown, where: string, what = 'this field'): void {
  if (typeof value === 'string') {
    if (LINE_BREAK.test(value)) throw HttpError.badRequest(`${where}: line breaks are not allowed in ${what}`);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => refuseLineBreaks(v, `${where}[${i}]`, what));
  }
}

/** A content object or an attachment/alternative: its single-line fields and its headers. */
function checkPart(part: unknown, where: string): void {
  if (!isObject(part)) return;
  for (const field of PART_LINE_FIELDS) refuseLineBreaks(part[field], `${where}.${field}`);
  if (part.method !== undefined && !/^[A-Za-z-]{1,32}$/.test(String(part.method))) {
    throw HttpError.badRequest(`${where}.method: expected an iCalendar method such as REQUEST or CANCEL`);
  }
  checkHeaders(part.headers, `${where}.headers`, false);
}

/** Custom headers in either form nodemailer takes: `{ name: value }` or `[{ key, value }]`. */
function checkHeaders(headers: unknown, where: string, topLevel: boolean): void {
  const entries: [string, unknown][] = Array.isArray(headers)
    ? headers.filter(isObject).map((h) => [String(h.key), h.value])
    : isObject(headers)
      ? Object.entries(headers)
      : [];
  for (const [name, value] of entries) {
    const at = `${where}[${JSON.stringify(name.slice(0, 80))}]`;
    if (!FIELD_NAME.test(name)) {
      throw HttpError.badRequest(`${at}: not a valid header name (printable ASCII without spaces or ":", at most 76 characters)`);
    }
    const lower = name.toLowerCase();
    if (MIME_STRUCTURE_HEADERS.has(lower)) {
      throw HttpError.badRequest(`${at}: MIME structure headers are made by the composer; use contentType, encoding or textEncoding instead`);
    }
    if (topLevel && ADDRESS_HEADERS.has(lower)) {
      throw HttpError.badRequest(`${at}: address headers must be given as the from, sender, replyTo, to, cc and bcc fields`);
    }
    for (const v of Array.isArray(value) ? value : [value]) {
      if (isObject(v) && v.prepared === true && typeof v.value === 'string' && LINE_BREAK.test(v.value)) {
        throw HttpError.badRequest(`${at}: a prepared header value is used as is and must be a single line`);
      }
    }
  }
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
