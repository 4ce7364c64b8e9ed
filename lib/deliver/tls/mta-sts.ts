/**
 * MTA-STS (RFC 8461) discovery for the delivery stage: the TXT record `_mta-sts.DOMAIN`, the
 * policy at `https://mta-sts.DOMAIN/.well-known/mta-sts.txt`, and a cache per policy domain in
 * the worker. deliver-job asks `policyFor(domain)` once per job; it never throws: no usable
 * policy is `undefined`, which means "as if the domain had none" (§5.1).
 *
 * The fetch: HTTPS with a certificate valid for mta-sts.DOMAIN (the system's CAs plus the
 * operator's extra ones), no redirects (§3.3), status 200 with text/plain, at most 64 KiB, one
 * deadline. The host is resolved through the configured DNS servers, and local addresses are
 * refused unless delivery.allowLocalAddresses, as for MX hosts (the policy host must not be a way
 * into our own network).
 *
 * The cache (§3.3, §5.1):
 *   - a cached policy is used until max_age runs out, refreshed when the TXT id changes;
 *   - a failed fetch keeps the cached policy while it is in date; with nothing cached there is no
 *     policy. A failed fetch is not repeated for FETCH_RETRY_MS, so a domain with a broken policy
 *     host does not cost every delivery a timeout;
 *   - no TXT record, or a failed TXT lookup, with a policy in date: that policy still applies
 *     (removing the record does not remove the policy; §8.3 wants mode none published for that);
 *   - the TXT answer is itself kept for TXT_CACHE_MS: node's resolveTxt gives no TTL.
 * mode none is cached like any policy and means no policy.
 */
import https from 'node:https';
import type { ClientRequest } from 'node:http';
import { Resolver } from 'node:dns/promises';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import type { Logger } from 'pino';
import { withTimeout } from '../dns-deadline.js';
import { isLocalAddress } from '../local-address.js';
import { parseStsPolicy, parseStsTxt, type StsPolicy } from './mta-sts-policy.js';
import { trustList } from './trust.js';

export interface MtaStsOptions {
  servers?: readonly string[];
  timeoutMs?: number;
  allowLocalAddresses?: boolean;
  /** extra trusted CA certificates (PEM), besides node's bundled ones */
  extraCa?: readonly string[];
  /** for tests: the HTTPS port of policy hosts (443 on the Internet) */
  httpsPort?: number;
  /** TXT answers are kept this long (default 60 s) */
  txtCacheMs?: number;
  cacheSize?: number;
  logger?: Logger;
  now?: () => number;
}

export interface ActivePolicy extends StsPolicy {
  id: string;
  domain: string;
  /** when this policy stops applying, ms since the epoch */
  expiresAt: number;
}

interface Cached {
  policy: ActivePolicy;
}

const POLICY_PATH = '/.well-known/mta-sts.txt';
const MAX_POLICY_BYTES = 64 * 1024;
const FETCH_RETRY_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TXT_CACHE_MS = 60_000;
const DEFAULT_CACHE_SIZE = 1000;

export class MtaStsResolver {
  private readonly resolver: Resolver;
  private readonly timeoutMs: number;
  private readonly ca: string[] | undefined;
  private readonly policies = new Map<string, Cached>();
  private readonly txt = new Map<string, { id: string | undefined; until: number }>();
  private readonly failedUntil = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<ActivePolicy | undefined>>();
  private readonly now: () => number;

  constructor(private readonly opts: MtaStsOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.resolver = new Resolver({ timeout: Math.max(1, Math.floor(this.timeoutMs / 3)), tries: 2 });
    if (opts.servers?.length) this.resolver.setServers([...opts.servers]);
    this.ca = trustList(opts.extraCa);
    this.now = opts.now ?? Date.now;
  }

  /** The policy that applies to mail for `domain` (ASCII, lower case), or undefined. */
  policyFor(domain: string): Promise<ActivePolicy | undefined> {
    let pending = this.inFlight.get(domain);
    if (!pending) {
      pending = this.discover(domain)
        .then((p) => (p && p.mode !== 'none' ? p : undefined))
        .catch((err: unknown) => {
          this.opts.logger?.warn({ event: 'MTA_STS_FETCH_FAILED', domain, err: (err as Error).message }, `MTA-STS discovery for ${domain} failed`);
          return undefined;
        })
        .finally(() => this.inFlight.delete(domain));
      this.inFlight.set(domain, pending);
    }
    return pending;
  }

  private async discover(domain: string): Promise<ActivePolicy | undefined> {
    const now = this.now();
    const cached = this.policies.get(domain)?.policy;
    const inDate = cached && cached.expiresAt > now ? cached : undefined;
    if (cached && !inDate) this.policies.delete(domain);

    const id = await this.txtId(domain);
    if (id === undefined) return inDate; // no record (or no answer): a policy in date still holds
    if (inDate && inDate.id === id) return inDate;
    if ((this.failedUntil.get(domain) ?? 0) > now) return inDate;

    try {
      const policy = parseStsPolicy(await this.fetchPolicy(domain));
      const active: ActivePolicy = { ...policy, id, domain, expiresAt: this.now() + policy.maxAgeS * 1000 };
      this.remember(domain, active);
      this.failedUntil.delete(domain);
      this.opts.logger?.info({ event: 'MTA_STS_POLICY', domain, id, mode: policy.mode, mx: policy.mx, maxAge: policy.maxAgeS }, `MTA-STS policy of ${domain}: ${policy.mode}`);
      return active;
    } catch (err) {
      this.failedUntil.set(domain, this.now() + FETCH_RETRY_MS);
      this.opts.logger?.warn(
        { event: 'MTA_STS_FETCH_FAILED', domain, id, err: (err as Error).message, cached: inDate ? inDate.id : null },
        `MTA-STS policy of ${domain} could not be fetched${inDate ? '; the cached one still applies' : ''}`,
      );
      return inDate;
    }
  }

  /** The id of the domain's STSv1 TXT record; undefined for none (or a failed lookup). */
  private async txtId(domain: string): Promise<string | undefined> {
    const hit = this.txt.get(domain);
    if (hit && hit.until > this.now()) return hit.id;
    let id: string | undefined;
    try {
      const records = await withTimeout(this.resolver.resolveTxt(`_mta-sts.${domain}`), this.timeoutMs);
      id = parseStsTxt(records.map((parts) => parts.join('')));
    } catch {
      id = undefined; // NXDOMAIN, NODATA, SERVFAIL, timeout: "no record" for this delivery (§3.3)
    }
    this.txt.set(domain, { id, until: this.now() + (this.opts.txtCacheMs ?? DEFAULT_TXT_CACHE_MS) });
    this.trim(this.txt);
    return id;
  }

  private remember(domain: string, policy: ActivePolicy): void {
    this.policies.delete(domain);
    this.policies.set(domain, { policy });
    this.trim(this.policies);
  }

  private trim(map: Map<string, unknown>): void {
    const size = this.opts.cacheSize ?? DEFAULT_CACHE_SIZE;
    while (map.size > size) {
      const oldest = map.keys().next().value;
      if (oldest === undefined) break;
      map.delete(oldest);
    }
  }

  /** GET the policy file; resolves with its text or rejects with why not. */
  private async fetchPolicy(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const deadline = this.now() + this.timeoutMs;
    const addresses = await this.addressesOf(host);
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let req: ClientRequest | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req?.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new Error(`no policy from ${host} within ${this.timeoutMs} ms`)), Math.max(1, deadline - this.now()));
      req = https.request(
        {
          host,
          port: this.opts.httpsPort ?? 443,
          path: POLICY_PATH,
          method: 'GET',
          servername: host,
          agent: false,
          rejectUnauthorized: true,
          ...(this.ca ? { ca: this.ca } : {}),
          headers: { accept: 'text/plain', 'user-agent': 'Sluice MTA-STS' },
          lookup: fixedLookup(addresses),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          // §3.3: redirects are not followed; anything but 200 is no policy
          if (status !== 200) return fail(new Error(`${host} answered HTTP ${status}`));
          const type = String(res.headers['content-type'] ?? '');
          if (!/^text\/plain\s*(;|$)/i.test(type)) return fail(new Error(`${host} served ${JSON.stringify(type.slice(0, 60))}, not text/plain`));
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_BYTES) return fail(new Error(`policy of ${domain} is larger than ${MAX_POLICY_BYTES} bytes`));
            chunks.push(chunk);
          });
          res.on('end', () => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            resolve(Buffer.concat(chunks).toString('utf8'));
          });
          res.on('error', fail);
        },
      );
      req.on('error', (err) => fail(new Error(`policy fetch from ${host}: ${err.message}`)));
      req.end();
    });
  }

  private async addressesOf(host: string): Promise<LookupAddress[]> {
    const ask = async (family: 4 | 6): Promise<LookupAddress[]> => {
      try {
        const found = await withTimeout(family === 4 ? this.resolver.resolve4(host) : this.resolver.resolve6(host), this.timeoutMs);
        return found.map((address) => ({ address, family }));
      } catch {
        return [];
      }
    };
    const [v4, v6] = await Promise.all([ask(4), ask(6)]);
    const all = [...v4, ...v6];
    const usable = this.opts.allowLocalAddresses ? all : all.filter((a) => !isLocalAddress(a.address));
    if (!usable.length) throw new Error(all.length ? `${host} resolves only to local addresses, refused` : `${host} has no address`);
    return usable;
  }
}

/** A `lookup` for http(s).request that answers with addresses found beforehand. */
function fixedLookup(addresses: LookupAddress[]): LookupFunction {
  return (_host, options, callback) => {
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  };
}
