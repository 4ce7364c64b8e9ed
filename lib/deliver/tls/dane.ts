/**
 * DANE for SMTP (RFC 7672, with RFC 7671): an MX host that publishes DNSSEC-validated TLSA
 * records at `_PORT._tcp.HOST` must be reached over TLS, with a certificate that matches one of
 * them. Part of the delivery stage: deliver-job asks `TlsaResolver.lookup()` before it connects to
 * a host, and the SMTP session checks the peer with `checkDane()` after STARTTLS, before MAIL FROM.
 *
 * What counts (RFC 7672 §3.1):
 *   - usages 3 (DANE-EE: the leaf's certificate or key; no name or date check) and 2 (DANE-TA: a
 *     certificate in the presented chain is the trust anchor; the leaf must chain to it, be in date
 *     and name the MX host). Usages 0 and 1 (PKIX-TA/EE) are unusable for SMTP and ignored;
 *   - selectors 0 (whole certificate) and 1 (SubjectPublicKeyInfo); matching 0 (exact), 1 (SHA-256),
 *     2 (SHA-512), with the digest length checked.
 *
 * Decisions (each a state of the lookup):
 *   - secure (AD) RRset with usable records → DANE: STARTTLS required, the certificate must match;
 *   - secure RRset whose records are all unusable → TLS still required, without authentication
 *     (RFC 7672 §2.2, Postfix's fallback to "encrypt");
 *   - insecure (no AD), NXDOMAIN or NODATA → no DANE: the domain's normal policy;
 *   - a failed lookup (SERVFAIL, timeouts): RFC 7672 §2.1.1 makes that fatal only for a host in a
 *     signed zone (an attacker could be hiding the records). We cannot see that from node's answer
 *     for the host's address, so we ask for its A record with the AD bit: signed (AD) → the host is
 *     deferred (DaneLookupError); unsigned → the failure cannot hide a DANE policy: no DANE. When
 *     that probe fails too, the host is deferred: a temporary failure is safer than a downgrade.
 * We do not check that the MX RRset itself was validated (node's resolveMx does not say): a host
 * with secure TLSA records gets DANE even behind an unsigned MX, which only ever adds checks.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { DNS_TYPE, RCODE, recordsFor, type WireAnswer, type WireResolver } from './dns-wire.js';

export interface TlsaRecord {
  usage: number;
  selector: number;
  matching: number;
  data: Buffer;
}

export type TlsaLookup =
  | { state: 'secure'; records: TlsaRecord[]; unusable: number }
  | { state: 'insecure' }
  | { state: 'none' };

/** The TLSA records could not be read for a host that may have them: defer that host. */
export class DaneLookupError extends Error {
  constructor(
    message: string,
    readonly tlsaName: string,
  ) {
    super(message);
    this.name = 'DaneLookupError';
  }
}

export type DaneVerdict = { ok: true; match: string } | { ok: false; reason: string };

const DIGEST_BYTES: Record<number, number> = { 1: 32, 2: 64 };
const CACHE_MAX_MS = 60_000;
const CACHE_SIZE = 1000;
const MAX_CHAIN = 10;

/** One TLSA RDATA (RFC 6698 §2.1); undefined when too short to be one. */
export function parseTlsa(rdata: Buffer): TlsaRecord | undefined {
  if (rdata.length < 4) return undefined;
  return { usage: rdata[0]!, selector: rdata[1]!, matching: rdata[2]!, data: Buffer.from(rdata.subarray(3)) };
}

/** Usable for SMTP (RFC 7672 §3.1.3): DANE-TA or DANE-EE, a known selector and matching type. */
export function isUsableTlsa(r: TlsaRecord): boolean {
  if (r.usage !== 2 && r.usage !== 3) return false;
  if (r.selector !== 0 && r.selector !== 1) return false;
  if (r.matching === 0) return r.data.length > 0;
  return DIGEST_BYTES[r.matching] === r.data.length;
}

/** The TLSA base name of an SMTP server. */
export function tlsaName(host: string, port: number): string {
  return `_${port}._tcp.${host.toLowerCase().replace(/\.$/, '')}`;
}

/** TLSA lookups through a validating resolver, with a short cache (failures are not cached). */
export class TlsaResolver {
  private readonly cache = new Map<string, { result: TlsaLookup; expiresAt: number }>();
  private readonly inFlight = new Map<string, Promise<TlsaLookup>>();

  constructor(
    private readonly wire: WireResolver,
    private readonly cacheMaxMs = CACHE_MAX_MS,
  ) {}

  lookup(host: string, port: number): Promise<TlsaLookup> {
    const name = tlsaName(host, port);
    const hit = this.cache.get(name);
    if (hit && hit.expiresAt > Date.now()) return Promise.resolve(hit.result);
    if (hit) this.cache.delete(name);
    let pending = this.inFlight.get(name);
    if (!pending) {
      pending = this.load(name, host).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, pending);
    }
    return pending;
  }

  private async load(name: string, host: string): Promise<TlsaLookup> {
    let answer: WireAnswer | undefined;
    let failure: string;
    try {
      answer = await this.wire.query(name, DNS_TYPE.TLSA);
      failure = rcodeName(answer.rcode);
    } catch (err) {
      failure = (err as { code?: string }).code ?? (err as Error).message;
    }
    if (answer && (answer.rcode === RCODE.NOERROR || answer.rcode === RCODE.NXDOMAIN)) {
      const found = answer.rcode === RCODE.NOERROR ? recordsFor(answer, name, DNS_TYPE.TLSA) : [];
      let result: TlsaLookup;
      if (!found.length) result = { state: 'none' };
      else if (!answer.authenticated) result = { state: 'insecure' };
      else {
        const parsed = found.map((r) => parseTlsa(r.data));
        const records = parsed.filter((r): r is TlsaRecord => r !== undefined && isUsableTlsa(r));
        result = { state: 'secure', records, unusable: parsed.length - records.length };
      }
      const ttlS = Math.min(...found.map((r) => r.ttlS), this.cacheMaxMs / 1000);
      this.remember(name, result, Math.max(0, ttlS * 1000));
      return result;
    }
    // the lookup failed: it matters only when the host lives in a signed zone (see the header)
    let signed: boolean | undefined;
    try {
      const probe = await this.wire.query(host, DNS_TYPE.A);
      if (probe.rcode === RCODE.NOERROR || probe.rcode === RCODE.NXDOMAIN) signed = probe.authenticated;
    } catch {
      signed = undefined;
    }
    if (signed === false) return { state: 'insecure' };
    throw new DaneLookupError(`TLSA lookup of ${name} failed (${failure})${signed ? ' for a host in a signed zone' : ''}`, name);
  }

  private remember(name: string, result: TlsaLookup, ms: number): void {
    if (ms <= 0) return;
    this.cache.set(name, { result, expiresAt: Date.now() + ms });
    while (this.cache.size > CACHE_SIZE) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }
}

/**
 * Checks a presented chain (DER, leaf first, as the peer's issuer links give it) against usable
 * TLSA records. `names`: what a DANE-TA leaf must name (the MX host). `nowMs` for the dates.
 */
export function checkDane(records: readonly TlsaRecord[], chainDer: readonly Buffer[], names: readonly string[], nowMs = Date.now()): DaneVerdict {
  if (!chainDer.length) return { ok: false, reason: 'the server presented no certificate' };
  let chain: X509Certificate[];
  try {
    chain = chainDer.slice(0, MAX_CHAIN).map((der) => new X509Certificate(der));
  } catch (err) {
    return { ok: false, reason: `unreadable certificate (${(err as Error).message})` };
  }
  const leaf = chain[0]!;
  for (const r of records) {
    if (r.usage === 3 && matches(r, leaf)) return { ok: true, match: describe(r) };
  }
  let why = 'the certificate matches no TLSA record';
  for (const r of records) {
    if (r.usage !== 2) continue;
    const at = chain.findIndex((c) => matches(r, c));
    if (at < 0) continue;
    const problem = chainProblem(chain, at, nowMs) ?? nameProblem(leaf, names);
    if (!problem) return { ok: true, match: describe(r) };
    why = `trust anchor matched (${describe(r)}) but ${problem}`;
  }
  return { ok: false, reason: why };
}

/** Does the certificate (or its key) match the record? */
export function matches(r: TlsaRecord, cert: X509Certificate): boolean {
  let selected: Buffer;
  try {
    selected = r.selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  } catch {
    return false;
  }
  const value = r.matching === 0 ? selected : r.matching === 1 ? createHash('sha256').update(selected).digest() : r.matching === 2 ? createHash('sha512').update(selected).digest() : undefined;
  return value !== undefined && value.length === r.data.length && value.equals(r.data);
}

/** The leaf chains to chain[anchor]: each one issued and signed by the next, CAs above, in date. */
function chainProblem(chain: X509Certificate[], anchor: number, nowMs: number): string | undefined {
  for (let i = 0; i < anchor; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1]!;
    if (!issuer.ca) return `certificate ${i + 1} in the chain is not a CA`;
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return `certificate ${i} is not signed by the next one`;
    if (Date.parse(cert.validFrom) > nowMs || Date.parse(cert.validTo) < nowMs) return `certificate ${i} is out of date (${cert.validFrom} – ${cert.validTo})`;
  }
  return undefined;
}

function nameProblem(leaf: X509Certificate, names: readonly string[]): string | undefined {
  const ok = names.some((n) => leaf.checkHost(n, { subject: 'default', wildcards: true, partialWildcards: false, multiLabelWildcards: false }) !== undefined);
  return ok ? undefined : `the certificate does not name ${names.join(' or ')}`;
}

function describe(r: TlsaRecord): string {
  return `TLSA ${r.usage} ${r.selector} ${r.matching}`;
}

function rcodeName(rcode: number): string {
  const name = Object.entries(RCODE).find(([, v]) => v === rcode)?.[0];
  return name ?? `rcode ${rcode}`;
}
