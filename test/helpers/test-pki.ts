/**
 * Throw-away certificates for DANE and MTA-STS tests, made with the openssl command line as an
 * operator would: a test CA, leaves it issues for given names, self-signed leaves. EC P-256 keys
 * (quick to make). Each call works in its own temporary directory, removed before it returns.
 *
 * Also the TLSA data a zone would publish for a certificate: its SHA-256 / SHA-512 digests, of the
 * whole certificate (selector 0) or its public key (selector 1).
 */
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pem {
  key: Buffer;
  /** the certificate alone */
  cert: Buffer;
}

export interface IssuedPem extends Pem {
  /** leaf then the CA: what a server presents */
  chain: Buffer;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function inTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-pki-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const san = (names: string[]) => names.map((n) => (/^\d+\.\d+\.\d+\.\d+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');

export function makeCa(cn = 'Sluice Test CA'): Promise<Pem> {
  return inTemp(async (dir) => {
    const key = path.join(dir, 'ca.key');
    const cert = path.join(dir, 'ca.pem');
    await run('openssl', ['req', '-x509', ...EC, '-subj', `/CN=${cn}`, '-days', '2', '-keyout', key, '-out', cert,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { timeout: 30_000 });
    return { key: await readFile(key), cert: await readFile(cert) };
  });
}

/** A leaf for `names` signed by `ca` (not a CA itself). */
export function issue(ca: Pem, names: string[]): Promise<IssuedPem> {
  return inTemp(async (dir) => {
    const caKey = path.join(dir, 'ca.key');
    const caCert = path.join(dir, 'ca.pem');
    await writeFile(caKey, ca.key);
    await writeFile(caCert, ca.cert);
    const key = path.join(dir, 'leaf.key');
    const csr = path.join(dir, 'leaf.csr');
    const cert = path.join(dir, 'leaf.pem');
    const ext = path.join(dir, 'ext.cnf');
    await writeFile(ext, `basicConstraints=CA:FALSE\nsubjectAltName=${san(names)}\n`);
    await run('openssl', ['req', ...EC, '-subj', `/CN=${names[0]}`, '-keyout', key, '-out', csr], { timeout: 30_000 });
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '1', '-extfile', ext, '-out', cert], { timeout: 30_000 });
    const leaf = await readFile(cert);
    return { key: await readFile(key), cert: leaf, chain: Buffer.concat([leaf, ca.cert]) };
  });
}

/** A self-signed leaf for `names` (what many DANE-EE servers run). */
export function selfSigned(names: string[]): Promise<Pem> {
  return inTemp(async (dir) => {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    await run('openssl', ['req', '-x509', ...EC, '-subj', `/CN=${names[0]}`, '-days', '1', '-keyout', key, '-out', cert,
      '-addext', `subjectAltName=${san(names)}`], { timeout: 30_000 });
    return { key: await readFile(key), cert: await readFile(cert) };
  });
}

export function der(certPem: Buffer): Buffer {
  return new X509Certificate(certPem).raw;
}

/** TLSA association data (hex) for a certificate: selector 0 cert / 1 SPKI, matching 0/1/2. */
export function tlsaData(certPem: Buffer, selector: 0 | 1, matching: 0 | 1 | 2): string {
  const x = new X509Certificate(certPem);
  const selected = selector === 0 ? x.raw : x.publicKey.export({ type: 'spki', format: 'der' });
  if (matching === 0) return selected.toString('hex');
  return createHash(matching === 1 ? 'sha256' : 'sha512').update(selected).digest('hex');
}
