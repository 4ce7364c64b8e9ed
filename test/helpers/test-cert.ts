/**
 * A self-signed certificate for test TLS peers, made once per process with openssl (as a real
 * operator would) and kept in memory; the temp dir it was written to is removed at once.
 * CN and SAN name mx.test, localhost and 127.0.0.1, so a client that trusts `cert` as its CA
 * can verify the peer (TLS policy "verify" tests); a client that does not sees a self-signed
 * certificate (opportunistic TLS must still work).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export interface TestCert {
  key: Buffer;
  cert: Buffer;
}

let made: Promise<TestCert> | undefined;

export function testCert(): Promise<TestCert> {
  made ??= generate();
  return made;
}

async function generate(): Promise<TestCert> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sluice-cert-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    const certFile = path.join(dir, 'cert.pem');
    await promisify(execFile)(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=mx.test', '-days', '1',
        '-addext', 'subjectAltName=DNS:mx.test,DNS:localhost,IP:127.0.0.1',
        '-keyout', keyFile, '-out', certFile],
      { timeout: 30_000 },
    );
    return { key: await readFile(keyFile), cert: await readFile(certFile) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
