/**
 * DKIM signing at delivery (RFC 6376, relaxed/relaxed; rsa-sha256 and ed25519-sha256 per RFC 8463).
 *
 * The worker signs from what the queue already holds: the final header block and the relaxed
 * body hash computed chunk by chunk at ingest (lib/message/body-hash.ts). The body is never read
 * again to sign, so signing costs the same for 2 KB and 100 MB. Because the stored message was
 * CRLF-normalised before hashing, what we sign is exactly what goes on the wire (F12).
 *
 * We canonicalise headers ourselves rather than with mailauth's DkimSigner: that signer cannot
 * oversign (its h= lists only fields that are present, so anyone could add a second From after
 * us), and its relaxed canonicaliser folds every byte JavaScript's \s matches (0xA0, VT, FF)
 * where RFC 6376 §3.4.2 folds only SP and HTAB, which breaks raw UTF-8 headers ("à" is C3 A0)
 * at other verifiers. mailauth stays our verifier in tests.
 *
 * Keys (F17): error messages and warnings name the domain, selector and file path, never the key
 * bytes; the key buffer read from disk is zeroed once parsed.
 */
import { createHash, createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { domainToASCII } from 'node:url';
import addressparser from 'nodemailer/lib/addressparser';

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  privateKey: KeyObject;
}

/** A key that cannot be used. The message names domain, selector and path, never key bytes. */
export class DkimKeyError extends Error {
  constructor(
    message: string,
    readonly domain: string,
    readonly selector: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'DkimKeyError';
  }
}

export interface DkimKeyConfigEntry {
  domain: string;
  selector: string;
  privateKey: string;
  algorithm: string;
}

/** A PEM private key is a few KB; a bigger "key file" is a wrong path (a log, a device). */
const MAX_KEY_FILE_BYTES = 64 * 1024;
/** RFC 8301 §3.2: signers MUST use at least 1024 bits and SHOULD use 2048. */
const MIN_RSA_BITS = 1024;
const GOOD_RSA_BITS = 2048;

const KEY_TYPE: Record<DkimAlgorithm, string> = { 'rsa-sha256': 'rsa', 'ed25519-sha256': 'ed25519' };

/**
 * Reads every [[dkim.keys]] file; checks the key type matches the algorithm; warns (in the
 * returned list) when a key file is readable by group or others. Throws DkimKeyError at the
 * first key that cannot be used, so a bad key stops the start instead of silently not signing.
 * Paths are used as given (config loading resolves them against the app dir).
 */
export function loadDkimKeys(entries: readonly DkimKeyConfigEntry[]): { keys: DkimKey[]; warnings: string[] } {
  const keys: DkimKey[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const entry of entries) {
    const key = loadOne(entry, warnings);
    const id = `${key.selector}._domainkey.${key.domain}`;
    if (seen.has(id)) throw keyError(entry, `is configured twice (one DNS record cannot hold two keys)`);
    seen.add(id);
    keys.push(key);
  }
  return { keys, warnings };
}

function keyError(entry: DkimKeyConfigEntry, problem: string): DkimKeyError {
  const message = `DKIM key (domain "${entry.domain}", selector "${entry.selector}", file ${entry.privateKey}) ${problem}`;
  return new DkimKeyError(message, entry.domain, entry.selector, entry.privateKey);
}

function loadOne(entry: DkimKeyConfigEntry, warnings: string[]): DkimKey {
  const algorithm = entry.algorithm as DkimAlgorithm;
  if (!(algorithm in KEY_TYPE)) throw keyError(entry, `has unknown algorithm "${entry.algorithm}" (rsa-sha256 or ed25519-sha256)`);
  const domain = normaliseDomain(entry.domain);
  if (!domain) throw keyError(entry, 'has an invalid domain');
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(entry.selector)) throw keyError(entry, 'has an invalid selector');

  const { bytes, mode } = readKeyFile(entry);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: bytes, format: 'pem' });
  } catch (err) {
    // the code only (ERR_MISSING_PASSPHRASE, ERR_OSSL_…): crypto messages are not ours to vouch for
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error';
    throw keyError(entry, `is not an unencrypted PEM private key (${code})`);
  } finally {
    bytes.fill(0);
  }

  const type = privateKey.asymmetricKeyType;
  if (type !== KEY_TYPE[algorithm]) throw keyError(entry, `is a ${type ?? 'unknown'} key but is declared ${algorithm}`);
  if (type === 'rsa') {
    const bits = privateKey.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) throw keyError(entry, `has ${bits} bits; RSA keys need at least ${MIN_RSA_BITS}`);
    if (bits < GOOD_RSA_BITS) warnings.push(`DKIM key (domain "${entry.domain}", selector "${entry.selector}") has ${bits} bits; ${GOOD_RSA_BITS} is recommended`);
  }
  if (mode & 0o077) {
    const octal = (mode & 0o777).toString(8).padStart(4, '0');
    warnings.push(
      `DKIM key file ${entry.privateKey} (domain "${entry.domain}", selector "${entry.selector}") has mode ${octal}: ` +
        'readable by group or others; make it 0600 or 0400',
    );
  }
  return { domain, selector: entry.selector, algorithm, privateKey };
}

/** Reads the key file through one descriptor, so the mode checked is the file read. */
function readKeyFile(entry: DkimKeyConfigEntry): { bytes: Buffer; mode: number } {
  let fd: number;
  try {
    // non-blocking, so a FIFO at the key path cannot hang the start; no effect on a file
    fd = openSync(entry.privateKey, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read (permission denied)' : `cannot be opened (${code})`;
    throw keyError(entry, why);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw keyError(entry, 'is not a regular file');
    if (st.size > MAX_KEY_FILE_BYTES) throw keyError(entry, `is ${st.size} bytes, too big for a PEM private key`);
    const bytes = Buffer.alloc(st.size);
    let got = 0;
    while (got < bytes.length) {
      const n = readSync(fd, bytes, got, bytes.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return { bytes: bytes.subarray(0, got), mode: st.mode };
  } finally {
    closeSync(fd);
  }
}

/** Lower-case A-label form without a trailing dot; '' when it is not a domain. */
function normaliseDomain(domain: string): string {
  const ascii = domainToASCII(domain.trim().replace(/\.$/, '').toLowerCase());
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(ascii) ? ascii : '';
}

/**
 * Which keys sign a message: keys whose domain equals the From: header's domain or a parent
 * domain of it (so a key for example.test also signs for news.example.test: DMARC relaxed
 * alignment accepts that), else none. Several keys may apply (say one RSA and one ed25519, or
 * one for the domain and one for its parent): all of them sign, the most specific first.
 */
export function keysFor(fromDomain: string, keys: readonly DkimKey[]): DkimKey[] {
  const domain = normaliseDomain(fromDomain);
  if (!domain) return [];
  return keys
    .filter((k) => domain === k.domain || domain.endsWith(`.${k.domain}`))
    .sort((a, b) => b.domain.length - a.domain.length);
}

/** The domain of the (first) From: header's address, in A-label form; undefined if none. */
export function fromDomainOf(headerBlock: string | Buffer): string | undefined {
  const from = parseFields(asLatin1(headerBlock)).find((f) => f.name === 'from');
  if (!from) return undefined;
  const value = Buffer.from(from.raw.slice(from.raw.indexOf(':') + 1), 'latin1').toString('utf8');
  const mailbox = addressparser(value, { flatten: true }).find((a) => a.address.includes('@'));
  if (!mailbox) return undefined;
  return normaliseDomain(mailbox.address.slice(mailbox.address.lastIndexOf('@') + 1)) || undefined;
}

/** The TXT record to publish at <selector>._domainkey.<domain> for a key. */
export function dkimDnsRecord(key: DkimKey): string {
  if (key.algorithm === 'ed25519-sha256') {
    // RFC 8463 §4.2: p= is the raw 32-byte public key, not the SubjectPublicKeyInfo
    const jwk = key.privateKey.export({ format: 'jwk' });
    return `v=DKIM1; k=ed25519; p=${Buffer.from(jwk.x ?? '', 'base64url').toString('base64')}`;
  }
  // only the public half is exported
  const spki = createPublicKey(key.privateKey).export({ format: 'der', type: 'spki' });
  return `v=DKIM1; k=rsa; p=${spki.toString('base64')}`;
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
