/**
 * Turns a stored raw message into what the API serves: headers in order, addresses, subject,
 * text and HTML, attachments (described: name, type, size, sha256, md5; their bytes stay in the
 * raw message, see attachment-bytes.ts), links, the SPF/DKIM/DMARC results and the spam score
 * (spam/scorer.ts). Runs after the 250, from the stored bytes, with mailparser.
 *
 * Memory: the raw message and every attachment stream through chunk by chunk; what is held whole
 * is the text and the HTML, each cut at MAX_TEXT_CHARS. A message whose MIME structure mailparser
 * cannot read is kept with what was read before the error and `parseError`; its raw bytes are
 * served whole all the same.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MailParser, type AddressObject, type AttachmentStream, type HeaderLines, type MessageText } from 'mailparser';
import { isStoreUnavailable } from '../../store/write-guard.js';
import type { SpamScorer } from '../spam/scorer.js';
import type { InboxStore } from '../store/inbox-store.js';
import type { Address, AttachmentInfo, AuthResults, InboundEnvelope, MessageSummary, ParsedMessage } from '../store/types.js';
import type { AuthChecker } from './auth.js';
import { findCodes } from './codes.js';
import { linksFromHtml, linksFromText, mergeLinks } from './links.js';
import { PARSER_OPTIONS } from './parser-options.js';
import { searchDoc, type SearchDoc } from '../search/query.js';

/** Text and HTML are kept up to this many characters each. */
export const MAX_TEXT_CHARS = 1_000_000;
/** Attachments past this many are not listed (the raw message still has them). */
export const MAX_ATTACHMENTS = 250;
/** Header lines kept, and characters of one header value. */
const MAX_HEADERS = 1000;
const MAX_HEADER_VALUE = 16_384;

export interface ParseResult {
  parsed: ParsedMessage;
  summary: MessageSummary;
  search: SearchDoc;
}

export async function parseMessage(store: InboxStore, envelope: InboundEnvelope, auth: AuthChecker | undefined, onBytes: (n: number) => void = () => undefined, spam?: SpamScorer): Promise<ParseResult> {
  const content = readContent(counted(store.readRaw(envelope.id), onBytes), onBytes);
  const raw = () => Readable.from(store.readRaw(envelope.id));
  const [{ parsed }, authResults, spamScore] = await Promise.all([content, checkAuth(store, envelope, auth), spam ? spam.score(envelope, raw, content.then((c) => c.parsed)) : null]);
  parsed.auth = authResults;
  parsed.spam = spamScore;
  const summary: MessageSummary = {
    from: parsed.from,
    to: parsed.to,
    cc: parsed.cc,
    subject: parsed.subject,
    date: parsed.date,
    messageId: parsed.messageId,
    links: parsed.links,
    codes: parsed.codes,
    spam: parsed.spam,
    attachments: parsed.attachments.map(({ index, filename, contentType, size, md5 }) => ({ index, filename, contentType, size, md5 })),
  };
  return { parsed, summary, search: searchDoc(envelope, parsed) };
}

async function checkAuth(store: InboxStore, envelope: InboundEnvelope, auth: AuthChecker | undefined): Promise<AuthResults | null> {
  if (!auth) return null;
  try {
    return await auth.check(Readable.from(store.readRaw(envelope.id)), envelope.from, envelope.client);
  } catch {
    // DNS trouble past every retry, or the deadline: the message is kept without results
    return null;
  }
}

/** What the parser makes of raw bytes alone, without an envelope or auth checks (`sluice spam train` reads its corpus with it). */
export async function parseRaw(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<ParsedMessage> {
  return (await readContent(chunks, () => undefined)).parsed;
}

async function readContent(chunks: AsyncIterable<Buffer> | Iterable<Buffer>, onBytes: (n: number) => void): Promise<{ parsed: ParsedMessage }> {
  const parser = new MailParser(PARSER_OPTIONS);
  let headerLines: HeaderLines = [];
  parser.on('headerLines', (lines: HeaderLines) => (headerLines = lines));
  const attachments: AttachmentInfo[] = [];
  let text: string | undefined;
  let html: string | undefined;
  let parseError: string | undefined;

  const consume = async (source: AsyncIterable<AttachmentStream | MessageText>) => {
    for await (const data of source) {
      if (data.type === 'text') {
        text = data.text;
        html = data.html;
        continue;
      }
      if (attachments.length < MAX_ATTACHMENTS) {
        attachments.push(await describeAttachment(attachments.length, data, onBytes));
      } else {
        for await (const _ of data.content) void _;
      }
      data.release?.();
    }
  };
  const raw = Readable.from(chunks);
  try {
    raw.once('error', (err) => parser.destroy(err));
    raw.pipe(parser);
    await consume(parser as AsyncIterable<AttachmentStream | MessageText>);
  } catch (err) {
    // the store being reopened is no fault of the message: the parse fails and is tried again
    if (isStoreUnavailable(err)) throw err;
    parseError = (err as Error)?.message ?? String(err);
  } finally {
    raw.destroy();
  }

  const truncated = (text?.length ?? 0) > MAX_TEXT_CHARS || (html?.length ?? 0) > MAX_TEXT_CHARS;
  const keptText = text === undefined ? null : text.slice(0, MAX_TEXT_CHARS);
  const keptHtml = html === undefined ? null : html.slice(0, MAX_TEXT_CHARS);
  const parsed: ParsedMessage = {
    headers: headerList(headerLines),
    from: addresses(parser.from)[0] ?? null,
    to: addresses(parser.to),
    cc: addresses(parser.cc),
    replyTo: addresses(parser.replyTo),
    subject: parser.subject ?? '',
    date: dateOf(headerLines),
    messageId: parser.messageId ?? null,
    text: keptText,
    html: keptHtml,
    truncated,
    attachments,
    links: mergeLinks(keptHtml ? linksFromHtml(keptHtml) : [], keptText ? linksFromText(keptText) : []),
    codes: findCodes(parser.subject ?? '', keptText ?? '', parser.otp?.code),
    auth: null,
    spam: null,
    ...(parseError ? { parseError } : {}),
  };
  return { parsed };
}

/** Reads one attachment's decoded bytes to their end, hashing and counting them. */
async function describeAttachment(index: number, data: AttachmentStream, onBytes: (n: number) => void): Promise<AttachmentInfo> {
  const sha256 = createHash('sha256');
  const md5 = createHash('md5');
  let size = 0;
  for await (const chunk of data.content as AsyncIterable<Buffer>) {
    sha256.update(chunk);
    md5.update(chunk);
    size += chunk.length;
    onBytes(chunk.length);
  }
  return {
    index,
    filename: data.filename ?? null,
    contentType: data.contentType,
    size,
    sha256: sha256.digest('hex'),
    md5: md5.digest('hex'),
    contentId: data.contentId ?? null,
    disposition: data.contentDisposition ?? null,
    related: Boolean(data.related),
  };
}

/** The chunks as they are, each counted on its way. */
async function* counted(chunks: AsyncGenerator<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of chunks) {
    onBytes(chunk.length);
    yield chunk;
  }
}

/** Header lines in order, duplicates kept, each value unfolded (not decoded). */
function headerList(lines: HeaderLines): { name: string; value: string }[] {
  return lines.slice(0, MAX_HEADERS).map(({ line }) => {
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
    return { name: name.trim(), value: value.slice(0, MAX_HEADER_VALUE) };
  });
}

/** The Date header as ISO, or null when there is none or it does not parse. */
function dateOf(lines: HeaderLines): string | null {
  const line = lines.find((l) => l.key === 'date')?.line;
  if (!line) return null;
  const t = Date.parse(line.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim());
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}

function addresses(value: AddressObject | AddressObject[] | undefined): Address[] {
  const out: Address[] = [];
  const add = (list: AddressObject['value']) => {
    for (const a of list) {
      if (a.group) add(a.group);
      else if (a.address) out.push({ name: a.name ?? '', address: a.address });
    }
  };
  for (const v of Array.isArray(value) ? value : value ? [value] : []) add(v.value);
  return out;
}
