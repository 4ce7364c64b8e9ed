/**
 * DKIM keys: reading [[dkim.keys]] files at start (master and each worker), choosing the keys that
 * sign a message by its From: domain, and the DNS record to publish for a key. Signing itself is
 * lib/deliver/dkim/sign.ts.
 *
 * Invariants: error messages and warnings name the domain, selector and file path, never the key
 * bytes; the key buffer read from disk is zeroed once parsed; a key that cannot be used stops the
 * start (DkimKeyError), so mail is never sent unsigned by surprise.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { domainToASCII } from 'node:url';

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
/** A domain in lower-case A-label form without a trailing dot; '' when it is not one. */
export function normaliseDomain(domain: string): string {
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
