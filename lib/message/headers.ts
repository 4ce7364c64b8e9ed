/**
 * The header work of ingest: parse the block (mailsplit), add the headers every message must
 * have (Message-ID, Date), and our trace header (Received).
 */
import { randomUUID } from 'node:crypto';
import libmime from 'libmime';
import mailsplit from 'mailsplit';
import type { Origin } from '../queue/types.js';

const { Headers } = mailsplit;

/**
 * A header block that can be read and changed (mailsplit's Headers). Spelled out here rather
 * than taken from mailsplit, so that plugin authors get the type without mailsplit's.
 */
export interface MessageHeaders {
  hasHeader(key: string): boolean;
  /** every line of that header, "Key: value" as it stands (folded lines included) */
  get(key: string): string[];
  /** the first value of that header, unfolded; '' when there is none */
  getFirst(key: string): string;
  getList(): { key: string; line: string }[];
  /** adds a header at `index` (0: on top, the default; Infinity: at the bottom) */
  add(key: string, value: string | Buffer | number, index?: number): void;
  /** adds an already formatted "Key: value" line */
  addFormatted(key: string, line: string, index?: number): void;
  /** removes every line of that header */
  remove(key: string): void;
  /** replaces every line of that header by one with this value (added on top when missing) */
  update(key: string, value: string | Buffer | number, relativeIndex?: number): void;
  /** the header block, with the blank line that ends it */
  build(lineEnd?: string): Buffer;
}

export function parseHeaders(block: Buffer): MessageHeaders {
  return new Headers(block);
}

/** RFC 5322 date-time in UTC: "Mon, 23 Nov 2026 05:27:31 +0000". */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** Adds Message-ID and Date when missing; returns the Message-ID the message ends up with. */
export function addMissingHeaders(headers: MessageHeaders, hostname: string, now: Date): string {
  let messageId = headers.getFirst('message-id');
  if (!messageId) {
    messageId = `<${randomUUID()}@${hostname}>`;
    headers.add('Message-ID', messageId, Infinity);
  }
  if (!headers.hasHeader('date')) headers.add('Date', rfc5322Date(now), Infinity);
  return messageId;
}

/** A single-line token safe to put into a header: no CR/LF or other controls. */
const clean = (s: string | undefined) => (s ?? '').replace(/[\x00-\x1f\x7f()\\]+/g, ' ').trim().slice(0, 255);
/**
 * The client's HELO name as one Received token: smtp-server only refuses controls in it, and a
 * ';' (which ends the tokens before the date), a space or 8-bit bytes would garble the header.
 */
const heloToken = (s: string | undefined) => (typeof s === 'string' ? s : '').replace(/[^A-Za-z0-9.\-_:[\]]/g, '_').slice(0, 255);

export interface ReceivedInfo {
  id: string;
  hostname: string;
  origin: Origin;
  /** the name the client gave in HELO/EHLO */
  helo?: string;
  /** the only recipient, when there is exactly one */
  recipient?: string;
  hideClientInfo: boolean;
  now: Date;
}

/** Prepends our Received header (RFC 5321 §4.4). */
export function addReceived(headers: MessageHeaders, info: ReceivedInfo): void {
  const o = info.origin;
  const parts: string[] = [];
  if (!info.hideClientInfo) {
    // smtp-server gives "[ip]" as the client's name when it has none (no reverse lookup)
    const name = clean(o.clientHostname).startsWith('[') ? '' : clean(o.clientHostname);
    const literal = o.remoteAddress ? `[${clean(o.remoteAddress)}]` : '';
    const from = heloToken(info.helo) || name || literal || 'localhost';
    const client = [name, literal].filter(Boolean).join(' ');
    parts.push(`from ${from}${client ? ` (${client})` : ''}`);
  }
  parts.push(`by ${clean(info.hostname)} (Sluice)`);
  parts.push(`with ${clean(o.transmissionType) || (o.via === 'api' ? 'HTTP' : 'ESMTP')}`);
  parts.push(`id ${info.id}`);
  if (info.recipient) parts.push(`for <${clean(info.recipient)}>`);
  headers.add('Received', `${parts.join(' ')}; ${rfc5322Date(info.now)}`, 0);
}

/** A plain decoded value of the first such header, for metadata (subject and the like). */
export function firstValue(headers: MessageHeaders, key: string): string {
  let value = headers.getFirst(key);
  try {
    value = libmime.decodeWords(value);
  } catch {
    // an undecodable encoded-word stays as it is
  }
  return value.replace(/[\x00-\x1f\x7f]+/g, ' ').trim().slice(0, 998);
}
