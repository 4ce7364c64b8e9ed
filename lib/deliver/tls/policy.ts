/**
 * Which TLS rules apply to one MX host of a delivery: the configured policy, DANE (RFC 7672) or
 * MTA-STS (RFC 8461). deliver-job asks `domainStsPolicy()` once per job and `hostTls()` for each
 * host before it connects; a host the rules refuse is skipped like an unreachable one (the next
 * MX is tried; when none is left the delivery is deferred as a TLS failure, never sent in clear).
 *
 * How they combine:
 *   1. nothing is looked up, and the configured policy alone applies, for a static route, an
 *      address literal, a domain named in [tlsPolicies] (the operator's explicit word is final:
 *      it is also the way out for a domain whose DANE or MTA-STS is broken), and wherever the
 *      policy is "none" (the operator wants no TLS there at all);
 *   2. otherwise, per host, DANE first (RFC 8461 §2: DANE wins over MTA-STS): a secure TLSA
 *      RRset with usable records → STARTTLS required and the certificate must match a record,
 *      whatever the configured policy says (a DANE-EE server may well be self-signed); a secure
 *      RRset with only unusable records → TLS required without authentication (or "verify" when
 *      that was configured); a failed TLSA lookup in a signed zone → this host is refused;
 *   3. then MTA-STS: mode enforce → a host outside the policy's mx list is refused, the others
 *      need TLS with a certificate valid for the MX name ("verify"); mode testing → the
 *      configured policy, and what enforce would have refused is logged (MTA_STS_TESTING);
 *   4. else the configured policy (zone, then [delivery] tls).
 * `label` says which rule decided; it goes into the delivery's result and log lines (`tlsPolicy`).
 */
import type { Logger } from 'pino';
import type { Job } from '../../channel/protocol.js';
import { DaneLookupError, type TlsaResolver, type TlsaRecord } from './dane.js';
import { toAsciiDomain, type TargetHost } from '../destination.js';
import type { ActivePolicy, MtaStsResolver } from './mta-sts.js';
import { policyAllows } from './mta-sts-policy.js';
import type { PeerCheck, TlsPolicy } from '../smtp-client.js';
import { DeliveryError } from '../../errors/delivery-error.js';

export interface TlsDiscovery {
  /** DANE lookups; undefined when delivery.dane is off */
  dane?: TlsaResolver;
  /** MTA-STS discovery; undefined when delivery.mtaSts is off */
  mtaSts?: MtaStsResolver;
}

export type TlsLabel = TlsPolicy | 'dane' | 'mta-sts' | 'mta-sts-testing';

export interface HostTls {
  tls: TlsPolicy;
  dane?: { records: readonly TlsaRecord[]; names: readonly string[] };
  label: TlsLabel;
  /** MTA-STS in mode testing: check what enforce would have refused */
  testing?: ActivePolicy;
}

export type HostDecision = HostTls | { refused: DeliveryError; label: TlsLabel };

/** The MTA-STS policy for this job's domain, when discovery applies to it. */
export async function domainStsPolicy(job: Job, base: TlsPolicy, explicit: boolean, routed: boolean, discovery: TlsDiscovery): Promise<ActivePolicy | undefined> {
  if (!discovery.mtaSts || explicit || routed || base === 'none') return undefined;
  const domain = toAsciiDomain(job.domain);
  if (!domain) return undefined;
  return discovery.mtaSts.policyFor(domain);
}

/** The rules for one host (see the header), or why it must not be used. */
export async function hostTls(
  job: Job,
  host: TargetHost,
  base: TlsPolicy,
  explicit: boolean,
  sts: ActivePolicy | undefined,
  discovery: TlsDiscovery,
  logger: Logger,
): Promise<HostDecision> {
  const discoverable = !explicit && base !== 'none' && (host.source === 'mx' || host.source === 'implicit');
  if (!discoverable) return { tls: base, label: base };

  if (discovery.dane) {
    try {
      const tlsa = await discovery.dane.lookup(host.host, host.port);
      if (tlsa.state === 'secure' && tlsa.records.length) {
        return { tls: 'encrypt', dane: { records: tlsa.records, names: [host.host] }, label: 'dane' };
      }
      if (tlsa.state === 'secure') return { tls: base === 'verify' ? 'verify' : 'encrypt', label: 'dane' };
    } catch (err) {
      if (!(err instanceof DaneLookupError)) throw err;
      logger.warn({ event: 'DANE_LOOKUP_FAILED', id: job.id, domain: job.domain, mx: host.host, tlsa: err.tlsaName, err: err.message }, `DANE: ${err.message}; not using ${host.host} now`);
      return { refused: DeliveryError.tlsRefused(`DANE: ${err.message}`, 'DANE_LOOKUP'), label: 'dane' };
    }
  }

  if (sts?.mode === 'enforce') {
    if (!policyAllows(sts, host.host)) {
      logger.warn({ event: 'MTA_STS_REFUSED', id: job.id, domain: job.domain, mx: host.host, policyId: sts.id }, `MTA-STS: ${host.host} is not an MX the policy of ${sts.domain} allows`);
      return { refused: DeliveryError.tlsRefused(`MTA-STS: ${host.host} is not in the mx list of the policy of ${sts.domain} (id ${sts.id})`, 'MTA_STS_MX'), label: 'mta-sts' };
    }
    return { tls: 'verify', label: 'mta-sts' };
  }
  if (sts?.mode === 'testing') {
    if (!policyAllows(sts, host.host)) testingReport(logger, job, host.host, sts, 'the MX is not in the policy');
    return { tls: base, label: 'mta-sts-testing', testing: sts };
  }
  return { tls: base, label: base };
}

/** MTA-STS testing: after a session was set up, would enforce have accepted its TLS? */
export function reportTesting(logger: Logger, job: Job, mx: string, sts: ActivePolicy, tls: boolean, peer: PeerCheck | undefined): void {
  if (!tls) testingReport(logger, job, mx, sts, 'no TLS');
  else if (peer && !peer.authorized) testingReport(logger, job, mx, sts, `the certificate is not valid for ${mx} (${peer.error ?? 'unverified'})`);
}

function testingReport(logger: Logger, job: Job, mx: string, sts: ActivePolicy, why: string): void {
  logger.warn({ event: 'MTA_STS_TESTING', id: job.id, domain: job.domain, mx, policyId: sts.id, reason: why }, `MTA-STS testing: enforce would have refused ${mx}: ${why}`);
}
