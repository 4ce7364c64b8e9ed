/**
 * DKIM signing at delivery (RFC 6376, relaxed/relaxed; rsa-sha256 and ed25519-sha256 per RFC 8463).
 *
 * The worker signs from what the queue already holds: the final header block and the relaxed
 * body hash computed chunk by chunk at ingest (lib/message/body-hash.ts). The body is never read
 * again to sign, so signing costs the same for 2 KB and 100 MB. Because the stored message was
 * CRLF-normalised before hashing, what we sign is exactly what goes on the wire.
 *
 * We canonicalise headers ourselves rather than with mailauth's DkimSigner: that signer cannot
 * oversign (its h= lists only fields that are present, so anyone could add a second From after
 * us), and its relaxed canonicaliser folds every byte JavaScript's \s matches (0xA0, VT, FF)
 * where RFC 6376 §3.4.2 folds only SP and HTAB, which breaks raw UTF-8 headers ("à" is C3 A0)
 * at other verifiers. mailauth stays our verifier in tests.
 *
 * The keys (loading, choosing, publishing) are lib/deliver/dkim/keys.ts.
 */
import { createHash, sign, type KeyObject } from 'node:crypto';
import addressparser from 'nodemailer/lib/addressparser';
import { normaliseDomain, type DkimKey } from './keys.js';

/** The domain of the (first) From: header's address, in A-label form; undefined if none. */
export function fromDomainOf(headerBlock: string | Buffer): string | undefined {
  const from = parseFields(asLatin1(headerBlock)).find((f) => f.name === 'from');
  if (!from) return undefined;
  const value = Buffer.from(from.raw.slice(from.raw.indexOf(':') + 1), 'latin1').toString('utf8');
  const mailbox = addressparser(value, { flatten: true }).find((a) => a.address.includes('@'));
  if (!mailbox) return undefined;
  return normaliseDomain(mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1)) || undefined;
}

/** The header fields we sign when present. Trace and transport fields (Received, Return-Path)
 * are left out: relays add and rewrite them. */
export const DEFAULT_SIGNED_FIELDS: readonly string[] = [
  'from', 'sender', 'reply-to', 'subject', 'date', 'message-id', 'to', 'cc',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-id', 'content-description',
  'resent-date', 'resent-from', 'resent-sender', 'resent-to', 'resent-cc', 'resent-message-id',
  'in-reply-to', 'references',
  'list-id', 'list-help', 'list-unsubscribe', 'list-unsubscribe-post', 'list-subscribe', 'list-post', 'list-owner', 'list-archive',
];

export interface DkimSignOptions {
  /** signing time for t= (default: now) */
  now?: Date;
  /** fields to sign when present, instead of DEFAULT_SIGNED_FIELDS; From is always signed */
  headerFields?: string[];
  /** fields named once more in h= than they occur, so a copy added later breaks the
   * signature (RFC 6376 §8.15); default ['from'] */
  oversign?: string[];
}

/**
 * DKIM-Signature header lines (each "DKIM-Signature: ...\r\n", folded, CRLF) to prepend to
 * headerBlock, signing relaxed/relaxed with the given body hash (base64 of sha256 over the
 * relaxed body). One line per key, in the order of keys; each signs the original headers only.
 */
export function dkimSignatures(headerBlock: string | Buffer, bodyHash: string, keys: readonly DkimKey[], opts: DkimSignOptions = {}): string {
  return unsignedFields(headerBlock, bodyHash, keys, opts)
    .map((u) => u.finish(sign(...u.signArgs)))
    .join('');
}

/**
 * The same as dkimSignatures, with the private-key operations on libuv's thread pool: an RSA-2048
 * signature costs about 2 ms of CPU, which a worker's event loop should not spend inline when it
 * keeps many deliveries in flight.
 */
export async function dkimSignaturesAsync(headerBlock: string | Buffer, bodyHash: string, keys: readonly DkimKey[], opts: DkimSignOptions = {}): Promise<string> {
  const fields = unsignedFields(headerBlock, bodyHash, keys, opts);
  const signatures = await Promise.all(
    fields.map(
      (u) => new Promise<Buffer>((resolve, reject) => sign(...u.signArgs, (err, sig) => (err ? reject(err) : resolve(sig)))),
    ),
  );
  return fields.map((u, i) => u.finish(signatures[i]!)).join('');
}

interface UnsignedField {
  /** arguments for crypto.sign: algorithm, the data, the key */
  signArgs: [string | null, Buffer, KeyObject];
  /** the folded header field with the signature in b=, CRLF at the end */
  finish(signature: Buffer): string;
}

function unsignedFields(headerBlock: string | Buffer, bodyHash: string, keys: readonly DkimKey[], opts: DkimSignOptions): UnsignedField[] {
  if (!/^[A-Za-z0-9+/]{43}=$/.test(bodyHash)) throw new TypeError('bodyHash must be the base64 of a sha256 digest');
  const fields = parseFields(asLatin1(headerBlock));
  const h = signedFieldList(fields, opts.headerFields ?? DEFAULT_SIGNED_FIELDS, opts.oversign ?? ['from']);
  const canonicalHeaders = canonicalise(fields, h);
  const t = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  return keys.map((key) => unsignedField(key, h, bodyHash, t, canonicalHeaders));
}

interface Field {
  /** lower-case name */
  name: string;
  /** the whole field as it stands, folding included, without the final CRLF */
  raw: string;
}

function asLatin1(block: string | Buffer): string {
  return typeof block === 'string' ? block : block.toString('latin1');
}

/** Splits a header block (latin1, one char per byte) into fields; stops at the blank line. */
function parseFields(block: string): Field[] {
  const fields: Field[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '') break;
    const last = fields[fields.length - 1];
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      last.raw += `\r\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    // a line without a colon is not a field; it is kept out of the signature, not repaired
    const name = colon > 0 ? asciiLower(line.slice(0, colon).replace(/[ \t]+$/, '')) : '';
    fields.push({ name, raw: line });
  }
  return fields.filter((f) => f.name !== '');
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

/** h=: every present instance of each listed field, plus one more of each oversigned field. */
function signedFieldList(fields: readonly Field[], wanted: readonly string[], oversign: readonly string[]): string[] {
  const names = [...new Set(['from', ...wanted.map(asciiLower)])];
  const over = new Set(oversign.map(asciiLower));
  const h: string[] = [];
  for (const name of names) {
    const count = fields.filter((f) => f.name === name).length;
    for (let i = 0; i < count; i++) h.push(name);
    if (over.has(name)) h.push(name);
  }
  return h;
}

/**
 * The signed fields in h= order, each relaxed-canonical with CRLF, picked as a verifier does
 * (RFC 6376 §5.4.2): each name takes the last instance not yet used; a name with none left
 * (an oversigned one) contributes nothing.
 */
function canonicalise(fields: readonly Field[], h: readonly string[]): string {
  const unused = new Map<string, Field[]>();
  for (const f of fields) unused.set(f.name, [...(unused.get(f.name) ?? []), f]);
  let out = '';
  for (const name of h) {
    const field = unused.get(name)?.pop();
    if (field) out += `${relaxedField(field.raw)}\r\n`;
  }
  return out;
}

/**
 * RFC 6376 §3.4.2: lower-case the name, unfold, turn runs of WSP (SP and HTAB only) into one
 * SP, drop WSP at the end of the value and around the colon.
 */
function relaxedField(raw: string): string {
  const colon = raw.indexOf(':');
  const name = asciiLower(raw.slice(0, colon).replace(/[ \t]+$/, ''));
  const value = raw
    .slice(colon + 1)
    .replace(/\r?\n/g, '')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ /, '')
    .replace(/ $/, '');
  return `${name}:${value}`;
}

/** Header lines are folded to stay within this many characters (RFC 5322 recommends 78). */
const FOLD_AT = 76;

/** Builds a folded header field from tokens; folding whitespace goes only where DKIM allows FWS. */
class Folder {
  private readonly lines: string[] = [];
  private line: string;

  constructor(start: string) {
    this.line = start;
  }

  /** Appends a token, after `sep`, on a new line when it does not fit. */
  add(token: string, sep: string): void {
    if (this.line.length + sep.length + token.length > FOLD_AT && this.line.trim() !== '') {
      this.lines.push(this.line);
      this.line = ` ${token}`;
    } else {
      this.line += sep + token;
    }
  }

  /** Appends a string FWS may split anywhere (base64), filling lines. */
  addSplittable(value: string): void {
    let rest = value;
    while (rest) {
      const room = FOLD_AT - this.line.length;
      if (room <= 0) {
        this.lines.push(this.line);
        this.line = ' ';
        continue;
      }
      this.line += rest.slice(0, room);
      rest = rest.slice(room);
    }
  }

  text(): string {
    return [...this.lines, this.line].join('\r\n');
  }
}

function unsignedField(key: DkimKey, h: readonly string[], bodyHash: string, t: number, canonicalHeaders: string): UnsignedField {
  const folder = new Folder('DKIM-Signature:');
  for (const tag of [`v=1;`, `a=${key.algorithm};`, `c=relaxed/relaxed;`, `d=${key.domain};`, `s=${key.selector};`, `t=${t};`]) {
    folder.add(tag, ' ');
  }
  h.forEach((name, i) => folder.add(`${i === 0 ? 'h=' : ''}${name}${i === h.length - 1 ? ';' : ':'}`, i === 0 ? ' ' : ''));
  folder.add(`bh=${bodyHash};`, ' ');
  folder.add('b=', ' ');
  // the signature covers this field with an empty b= (RFC 6376 §3.7), canonicalised like the rest
  const data = Buffer.from(canonicalHeaders + relaxedField(folder.text()), 'latin1');
  return {
    signArgs:
      key.algorithm === 'rsa-sha256'
        ? ['sha256', data, key.privateKey]
        : // RFC 8463 §3: Ed25519 signs the sha256 digest of the canonical data
          [null, createHash('sha256').update(data).digest(), key.privateKey],
    finish(signature) {
      folder.addSplittable(signature.toString('base64'));
      return `${folder.text()}\r\n`;
    },
  };
}
