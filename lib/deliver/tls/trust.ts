/**
 * The operator's extra trusted CAs (delivery.ca): a PEM file with one or more certificates, read
 * once by the master at start (a bad file stops the start, naming it) and by each worker. They are
 * trusted besides node's bundled CAs for TLS policy "verify" and for MTA-STS (the policy host and
 * the MX certificates): a private CA in a closed network, or tests.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of the file, PEM each; undefined when no file is configured. */
export function loadExtraCa(file: string | undefined): string[] | undefined {
  if (!file) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`delivery.ca: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const certs = text.match(PEM_CERT) ?? [];
  if (!certs.length) throw new Error(`delivery.ca: ${file} holds no PEM certificate`);
  for (const [i, pem] of certs.entries()) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new Error(`delivery.ca: certificate ${i + 1} in ${file} is unreadable (${(err as Error).message})`);
    }
  }
  return certs;
}

/** The full trust list for a TLS client that must also trust the extra CAs. */
export function trustList(extra: readonly string[] | undefined): string[] | undefined {
  return extra?.length ? [...rootCertificates, ...extra] : undefined;
}
