/**
 * The one self-signed certificate of test TLS peers (our listeners with STARTTLS, fakemx, the
 * inbound receiver, POP3), made once per test process with the openssl command line, as an
 * operator would. CN and SAN name mx.test, localhost and 127.0.0.1, so a client that trusts `cert`
 * as its CA can verify the peer (TLS policy "verify" tests); a client that does not sees a
 * self-signed certificate (opportunistic TLS must still work).
 *
 * The files stay in a temporary directory until the process exits: a config names them
 * (`keyFile`, `certFile`), a peer in the test process takes the bytes (`key`, `cert`). Certificates
 * for DANE and MTA-STS (a CA, leaves, TLSA data) are in test-pki.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCert {
  key: Buffer;
  cert: Buffer;
  keyFile: string;
  certFile: string;
}

let made: TestCert | undefined;

export function testCert(): TestCert {
  if (made) return made;
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-cert-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=mx.test', '-days', '1',
      '-addext', 'subjectAltName=DNS:mx.test,DNS:localhost,IP:127.0.0.1',
      '-keyout', keyFile, '-out', certFile],
    { stdio: 'ignore', timeout: 30_000 },
  );
  made = { key: readFileSync(keyFile), cert: readFileSync(certFile), keyFile, certFile };
  return made;
}
