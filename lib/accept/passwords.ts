/**
 * Password hashes for SMTP users in config: scrypt with a random salt, stored as
 * "scrypt$N$r$p$salt$hash" (base64). Verification takes constant time for the comparison.
 * `verifyPasswordSync` is for a thread that may block (password-checker.ts); the master's event
 * loop and libuv's thread pool never run a check.
 */
import { randomBytes, scrypt as scryptCb, scryptSync, timingSafeEqual, type ScryptOptions } from 'node:crypto';

const scrypt = (password: string, salt: Buffer, keylen: number, opts: ScryptOptions) =>
  new Promise<Buffer>((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));

const DEFAULTS = { N: 16384, r: 8, p: 1 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, 32, DEFAULTS);
  return ['scrypt', DEFAULTS.N, DEFAULTS.r, DEFAULTS.p, salt.toString('base64'), key.toString('base64')].join('$');
}

/** The parts of a stored hash, or undefined for one that is not ours. */
function parseHash(stored: string): { salt: Buffer; expected: Buffer; opts: ScryptOptions } | undefined {
  const [tag, n, r, p, salt, hash] = stored.split('$');
  if (tag !== 'scrypt' || !salt || !hash) return undefined;
  const N = Number(n);
  return { salt: Buffer.from(salt, 'base64'), expected: Buffer.from(hash, 'base64'), opts: { N, r: Number(r), p: Number(p), maxmem: 256 * N * Number(r) + 1024 * 1024 } };
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (!h) return false;
  const key = await scrypt(password, h.salt, h.expected.length, h.opts);
  return key.length === h.expected.length && timingSafeEqual(key, h.expected);
}

export function verifyPasswordSync(password: string, stored: string): boolean {
  const h = parseHash(stored);
  if (!h) return false;
  const key = scryptSync(password, h.salt, h.expected.length, h.opts);
  return key.length === h.expected.length && timingSafeEqual(key, h.expected);
}
