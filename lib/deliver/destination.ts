/**
 * Where to deliver a recipient domain: the list of hosts to try, in order, each with its
 * addresses. First stage of a delivery attempt (before the SMTP client connects).
 *
 * Order of sources:
 *   1. a static route (zone or domain smarthost): used as given, DNS is not asked for MX;
 *   2. an address literal as the domain (`[192.0.2.1]`, `[IPv6:2001:db8::1]`): that address;
 *   3. MX records, by priority, equal priorities shuffled (RFC 5321 §5.1);
 *   4. no MX records at all: the domain's own A/AAAA (the "implicit MX").
 *
 * Decisions, each a failure the delivery policy reads from DestinationError:
 *   - NXDOMAIN for the domain: permanent 5.1.2. A name that is not a valid domain: the same.
 *   - SERVFAIL, REFUSED, timeouts, an unreachable server: temporary 4.4.3.
 *   - a null MX (RFC 7505: one MX ".", priority 0): permanent 5.1.10.
 *   - an MX host without addresses (NXDOMAIN, no A/AAAA) is skipped: the next MX is tried.
 *   - no host with a usable address: temporary 4.4.3 when any lookup on the way failed
 *     temporarily (the answer may come back); otherwise permanent 5.4.4. RFC 5321 §5.1 says it
 *     "MUST be reported as an error" without saying which kind; a domain whose mail hosts have
 *     no addresses, or only local ones (the old "MX localhost" way of saying "no mail here"),
 *     is not going to start working in the next five days, and a quick bounce helps the sender.
 *   - loopback, private, link-local and other local answers from DNS are dropped unless
 *     allowLocalAddresses (lib/deliver/local-address.ts: the outbound MTA must not become a way
 *     to reach our own network). Static routes are operator config and may point anywhere.
 *
 * Static-route host names are resolved with the system resolver (getaddrinfo: /etc/hosts,
 * "localhost"), not the configured DNS servers: they name the operator's own infrastructure.
 * A route that does not resolve is temporary (4.4.3): a config fix must not bounce mail.
 *
 * Positive DNS answers are cached (bounded LRU). Node's resolveMx does not return TTLs, so an
 * entry lives for the smallest A/AAAA TTL of its hosts, capped by cacheMaxMs. Concurrent
 * lookups of the same domain share one query.
 */
import { Resolver, lookup } from 'node:dns/promises';
import { domainToASCII } from 'node:url';
import net from 'node:net';
import { withTimeout } from './dns-deadline.js';
import { isLocalAddress } from './local-address.js';

export interface TargetAddress {
  address: string;
  family: 4 | 6;
}

export interface TargetHost {
  /** MX name, route host, or the domain itself (implicit MX) or the literal address. */
  host: string;
  port: number;
  /** MX preference (0 for routes, literals and the implicit MX). */
  priority: number;
  addresses: TargetAddress[];
  /** Where this host came from. */
  source: 'route' | 'literal' | 'mx' | 'implicit';
}

export interface ResolverOptions {
  /** DNS servers, "127.0.0.1:5353" or "192.0.2.53"; default: the system's. */
  servers?: string[];
  ignoreIPv6?: boolean;
  /** AAAA before A (default: A first). */
  preferIPv6?: boolean;
  /** Default false: refuse MX/implicit-MX answers in loopback/private/link-local ranges. */
  allowLocalAddresses?: boolean;
  /** Per DNS query (the MX query, then each host's address queries in parallel). Default 10 s. */
  timeoutMs?: number;
  /** Attempts per query per server (default 2); the attempts share timeoutMs. */
  tries?: number;
  /**
   * SMTP port for MX, implicit-MX and literal hosts (default 25). A function lets tests map
   * MX names to fake MX ports on loopback; routes carry their own port.
   */
  port?: number | ((host: string) => number);
  /** At most this many MX hosts are looked up and returned (default 10). */
  maxHosts?: number;
  /** Upper bound for how long a positive answer is cached; 0 disables the cache. Default 60 s. */
  cacheMaxMs?: number;
  /** Cached domains at most (default 1000). */
  cacheSize?: number;
  /** How static-route host names are resolved; default: the system's getaddrinfo (dns.lookup). */
  routeLookup?: (host: string, family: 0 | 4) => Promise<{ address: string; family: number }[]>;
  /** For tests: the random source for shuffling equal MX priorities. */
  random?: () => number;
}

export type DestinationStatus = '4.4.3' | '5.1.2' | '5.1.10' | '5.4.4';

/** A destination that could not be resolved, with what the delivery policy needs. */
export class DestinationError extends Error {
  readonly code = 'EDNS' as const;
  readonly temporary: boolean;
  /** 451 for temporary, 550 for permanent: the reply a DSN can quote. */
  readonly responseCode: number;
  /** The reply line a DSN or the row's last response can show, like nodemailer's `response`. */
  readonly response: string;

  constructor(
    readonly enhancedStatus: DestinationStatus,
    message: string,
    readonly domain: string,
    /** node's DNS error code behind it (ENOTFOUND, ESERVFAIL, ETIMEOUT, …), when there was one. */
    readonly dnsCode?: string,
  ) {
    super(message);
    this.name = 'DestinationError';
    this.temporary = enhancedStatus.startsWith('4.');
    this.responseCode = this.temporary ? 451 : 550;
    this.response = `${this.responseCode} ${enhancedStatus} ${message}`;
  }
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_TRIES = 2;
const DEFAULT_PORT = 25;
const DEFAULT_MAX_HOSTS = 10;
const DEFAULT_CACHE_MAX_MS = 60_000;
const DEFAULT_CACHE_SIZE = 1000;

/** node dns codes meaning "this name/type has no answer" rather than "the lookup failed". */
const NO_ANSWER = new Set(['ENOTFOUND', 'ENODATA']);

interface HostLookup {
  addresses: TargetAddress[];
  /** The smallest TTL seen, seconds. */
  ttlS: number;
  /** A lookup failed in a way that may pass. */
  temporaryError?: string;
  /** Addresses were found but all were local and refused. */
  refusedLocal: boolean;
}

interface AddressAnswer {
  addresses: TargetAddress[];
  ttlS: number;
  temporaryError?: string;
}

interface CacheEntry {
  hosts: TargetHost[];
  expiresAt: number;
}

export class DestinationResolver {
  private readonly resolver: Resolver;
  private readonly opts: Readonly<ResolverOptions>;
  private readonly timeoutMs: number;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<TargetHost[]>>();

  constructor(opts: ResolverOptions = {}) {
    this.opts = { ...opts };
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const tries = Math.max(1, opts.tries ?? DEFAULT_TRIES);
    // c-ares grows the per-try timeout on retries; the guard in query() caps the total anyway.
    this.resolver = new Resolver({ timeout: Math.max(1, Math.floor(this.timeoutMs / (tries + 1))), tries });
    if (opts.servers?.length) this.resolver.setServers(opts.servers);
  }

  /** Hosts to try, in order; throws DestinationError when there is none. */
  async resolve(domain: string, route?: { host: string; port: number }): Promise<TargetHost[]> {
    if (route) return this.cached(`route:${route.host.toLowerCase()}:${route.port}`, () => this.resolveRoute(route), false);

    const literal = parseAddressLiteral(domain);
    if (literal !== undefined) return this.resolveLiteral(domain, literal);

    const ascii = toAsciiDomain(domain);
    if (!ascii) throw new DestinationError('5.1.2', `Invalid recipient domain ${JSON.stringify(domain.slice(0, 255))}`, domain);
    return this.cached(ascii, () => this.resolveMx(ascii), true);
  }

  /** Cache and in-flight sharing around a lookup; equal MX priorities are reshuffled per call. */
  private async cached(key: string, load: () => Promise<{ hosts: TargetHost[]; ttlS: number }>, shuffle: boolean): Promise<TargetHost[]> {
    const maxMs = this.opts.cacheMaxMs ?? DEFAULT_CACHE_MAX_MS;
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > Date.now()) {
      this.cache.delete(key); // re-insert: most recently used last
      this.cache.set(key, hit);
      return this.finish(hit.hosts, shuffle);
    }
    if (hit) this.cache.delete(key);

    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = load()
        .then(({ hosts, ttlS }) => {
          const ms = Math.min(maxMs, ttlS * 1000);
          if (ms > 0) this.remember(key, { hosts, expiresAt: Date.now() + ms });
          return hosts;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return this.finish(await pending, shuffle);
  }

  private remember(key: string, entry: CacheEntry): void {
    const size = this.opts.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.cache.set(key, entry);
    while (this.cache.size > size) {
      const oldest = this.cache.keys().next().value;
      if (oldest === undefined) break;
      this.cache.delete(oldest);
    }
  }

  /** A fresh copy for the caller (who may mutate it), with equal priorities shuffled. */
  private finish(hosts: TargetHost[], shuffle: boolean): TargetHost[] {
    const copy = hosts.map((h) => ({ ...h, addresses: h.addresses.map((a) => ({ ...a })) }));
    return shuffle ? shuffleEqualPriorities(copy, this.opts.random ?? Math.random) : copy;
  }

  private async resolveRoute(route: { host: string; port: number }): Promise<{ hosts: TargetHost[]; ttlS: number }> {
    const host = route.host.replace(/^\[(?:IPv6:)?(.*)\]$/i, '$1');
    const family = net.isIP(host);
    if (family) {
      return { hosts: [{ host, port: route.port, priority: 0, addresses: [{ address: host, family: family as 4 | 6 }], source: 'route' }], ttlS: Infinity };
    }
    let found: { address: string; family: number }[];
    try {
      const family = this.opts.ignoreIPv6 ? 4 : 0;
      const run = this.opts.routeLookup ?? ((h: string, f: 0 | 4) => lookup(h, { all: true, family: f }));
      found = await withTimeout(run(host, family), this.timeoutMs);
    } catch (err) {
      const code = errorCode(err);
      throw new DestinationError('4.4.3', `Static route host ${host} could not be resolved (${code ?? 'error'})`, host, code);
    }
    const addresses = this.order(
      found.filter((a) => a.family === 4 || (a.family === 6 && !this.opts.ignoreIPv6)).map((a) => ({ address: a.address, family: a.family as 4 | 6 })),
    );
    if (!addresses.length) throw new DestinationError('4.4.3', `Static route host ${host} has no usable address`, host);
    return { hosts: [{ host, port: route.port, priority: 0, addresses, source: 'route' }], ttlS: Infinity };
  }

  private resolveLiteral(domain: string, address: string): TargetHost[] {
    const family = net.isIP(address) as 4 | 6;
    if (family === 6 && this.opts.ignoreIPv6) {
      throw new DestinationError('5.4.4', `IPv6 address literal ${domain} while IPv6 is ignored`, domain);
    }
    if (!this.opts.allowLocalAddresses && isLocalAddress(address)) {
      throw new DestinationError('5.4.4', `Address literal ${domain} is a local address`, domain);
    }
    return [{ host: address, port: this.portFor(address), priority: 0, addresses: [{ address, family }], source: 'literal' }];
  }

  private async resolveMx(domain: string): Promise<{ hosts: TargetHost[]; ttlS: number }> {
    let mx: { exchange: string; priority: number }[];
    try {
      mx = await this.query(() => this.resolver.resolveMx(domain));
    } catch (err) {
      const code = errorCode(err);
      if (code === 'ENOTFOUND') throw new DestinationError('5.1.2', `Domain ${domain} does not exist (NXDOMAIN)`, domain, code);
      if (code !== 'ENODATA') throw new DestinationError('4.4.3', `DNS lookup of MX for ${domain} failed (${code ?? 'error'})`, domain, code);
      mx = [];
    }

    if (!mx.length) return this.resolveImplicit(domain);

    const real = mx.filter((r) => !isNullMx(r.exchange));
    if (!real.length) throw new DestinationError('5.1.10', `Domain ${domain} accepts no mail (null MX)`, domain);

    // sorted by priority here; equal priorities are shuffled per call in finish()
    const candidates = real
      .map((r) => ({ exchange: r.exchange.toLowerCase().replace(/\.$/, ''), priority: r.priority }))
      .sort((a, b) => a.priority - b.priority)
      .slice(0, this.opts.maxHosts ?? DEFAULT_MAX_HOSTS);
    const looked = await Promise.all(candidates.map((c) => this.lookupHost(c.exchange)));

    const seen = new Set<string>();
    const hosts: TargetHost[] = [];
    let ttlS = Infinity;
    candidates.forEach((c, i) => {
      const found = looked[i]!;
      const addresses = found.addresses.filter((a) => !seen.has(a.address));
      for (const a of addresses) seen.add(a.address);
      if (!addresses.length) return;
      ttlS = Math.min(ttlS, found.ttlS);
      hosts.push({ host: c.exchange, port: this.portFor(c.exchange), priority: c.priority, addresses, source: 'mx' });
    });
    if (hosts.length) return { hosts, ttlS };
    throw noUsableHost(domain, 'its MX hosts', looked);
  }

  /** RFC 5321 §5.1: no MX records, so the domain itself is the mail host. */
  private async resolveImplicit(domain: string): Promise<{ hosts: TargetHost[]; ttlS: number }> {
    const found = await this.lookupHost(domain);
    if (found.addresses.length) {
      return { hosts: [{ host: domain, port: this.portFor(domain), priority: 0, addresses: found.addresses, source: 'implicit' }], ttlS: found.ttlS };
    }
    throw noUsableHost(domain, 'it (no MX, implicit MX)', [found]);
  }

  /** A and AAAA of one host, in the preferred order, local addresses refused. */
  private async lookupHost(host: string): Promise<HostLookup> {
    const wantV6 = !this.opts.ignoreIPv6;
    const [v4, v6] = await Promise.all([
      this.addressQuery(() => this.resolver.resolve4(host, { ttl: true }), 4),
      wantV6 ? this.addressQuery(() => this.resolver.resolve6(host, { ttl: true }), 6) : Promise.resolve<AddressAnswer>({ addresses: [], ttlS: Infinity }),
    ]);
    const all = this.order([...v4.addresses, ...v6.addresses]);
    const usable = this.opts.allowLocalAddresses ? all : all.filter((a) => !isLocalAddress(a.address));
    return {
      addresses: usable,
      ttlS: Math.min(v4.ttlS, v6.ttlS),
      temporaryError: v4.temporaryError ?? v6.temporaryError,
      refusedLocal: all.length > 0 && usable.length === 0,
    };
  }

  private async addressQuery(run: () => Promise<{ address: string; ttl: number }[]>, family: 4 | 6): Promise<AddressAnswer> {
    try {
      const records = await this.query(run);
      return { addresses: records.map((r) => ({ address: r.address, family })), ttlS: Math.min(Infinity, ...records.map((r) => r.ttl)) };
    } catch (err) {
      const code = errorCode(err);
      if (code && NO_ANSWER.has(code)) return { addresses: [], ttlS: Infinity };
      return { addresses: [], ttlS: Infinity, temporaryError: code ?? 'error' };
    }
  }

  private order(addresses: TargetAddress[]): TargetAddress[] {
    const first = this.opts.preferIPv6 ? 6 : 4;
    return [...addresses.filter((a) => a.family === first), ...addresses.filter((a) => a.family !== first)];
  }

  private portFor(host: string): number {
    const p = this.opts.port;
    return typeof p === 'function' ? p(host) : (p ?? DEFAULT_PORT);
  }

  /** One DNS query with a hard deadline (c-ares's own timeouts grow with retries). */
  private query<T>(run: () => Promise<T>): Promise<T> {
    return withTimeout(run(), this.timeoutMs);
  }
}

function noUsableHost(domain: string, what: string, looked: HostLookup[]): DestinationError {
  const temporary = looked.find((l) => l.temporaryError)?.temporaryError;
  if (temporary) return new DestinationError('4.4.3', `DNS lookup of addresses for ${what} of ${domain} failed (${temporary})`, domain, temporary);
  if (looked.some((l) => l.refusedLocal)) return new DestinationError('5.4.4', `Mail for ${domain} resolves only to local addresses, refused`, domain);
  return new DestinationError('5.4.4', `No address found for ${what} of ${domain}`, domain);
}

/** RFC 7505: a null MX has the root as its exchange; node reports it as '' (some resolvers '.'). */
function isNullMx(exchange: string): boolean {
  return exchange === '' || exchange === '.';
}

/** `[192.0.2.1]` → '192.0.2.1', `[IPv6:2001:db8::1]` → '2001:db8::1'; undefined if not a literal. */
function parseAddressLiteral(domain: string): string | undefined {
  const m = /^\[(?:IPv6:)?([^\]]+)\]$/i.exec(domain.trim());
  if (!m) return undefined;
  const inner = m[1]!;
  const isV6Tag = /^\[IPv6:/i.test(domain.trim());
  const family = net.isIP(inner);
  if ((isV6Tag && family !== 6) || (!isV6Tag && family !== 4)) {
    throw new DestinationError('5.1.2', `Invalid address literal ${JSON.stringify(domain.slice(0, 64))}`, domain);
  }
  return inner;
}

/** Lower-case ASCII (punycode) form without a trailing dot; '' when it is not a domain. */
export function toAsciiDomain(domain: string): string {
  const ascii = domainToASCII(domain.trim().replace(/\.$/, '')).toLowerCase();
  if (!ascii || ascii.length > 253 || !ascii.includes('.')) return '';
  if (ascii.split('.').some((label) => label.length === 0 || label.length > 63)) return '';
  return ascii;
}

function shuffleEqualPriorities(hosts: TargetHost[], random: () => number): TargetHost[] {
  const out: TargetHost[] = [];
  for (let i = 0; i < hosts.length; ) {
    let j = i;
    while (j < hosts.length && hosts[j]!.priority === hosts[i]!.priority) j++;
    const group = hosts.slice(i, j);
    for (let k = group.length - 1; k > 0; k--) {
      const r = Math.floor(random() * (k + 1));
      [group[k], group[r]] = [group[r]!, group[k]!];
    }
    out.push(...group);
    i = j;
  }
  return out;
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}
