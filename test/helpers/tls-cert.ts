/**
 * A throw-away self-signed certificate for TLS tests, made with the openssl command line (the
 * same way an operator would), once per test process, in a temporary directory.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './master.js';

export interface TestCert {
  key: string;
  cert: string;
  /** the PEM bytes, for clients that pin it */
  certPem: Buffer;
}

let cached: TestCert | undefined;

export function testCert(): TestCert {
  if (cached) return cached;
  const dir = tempDir('sluice-cert-');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert],
    { stdio: 'ignore', timeout: 20_000 },
  );
  cached = { key, cert, certPem: readFileSync(cert) };
  return cached;
}
