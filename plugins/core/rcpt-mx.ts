/**
 * core/rcpt-mx — refuses at RCPT TO a recipient whose domain cannot receive mail, so the client
 * learns it at once instead of through a bounce days later. A domain can receive mail when it
 * has MX records, or (no MX: RFC 5321 §5.1's implicit MX) an A or AAAA record. It asks the
 * resolvers of [dns] servers (the system's when empty), with [dns] timeout.
 *
 *   no such domain, or no MX/A/AAAA      550 5.1.2
 *   a null MX (RFC 7505: "accepts no mail")   556 5.1.10
 *   DNS failed or timed out              451 4.4.3 (the client tries again later)
 *
 * Domains with a static route ([routes."domain"]) and address literals are not looked up. Answers
 * are cached for a short time (failures to answer are not).
 *
 *   [plugins."core/rcpt-mx"]
 *   enabled = ["main"]
 *   cacheTtl = "5m"             # domains that can receive mail
 *   negativeCacheTtl = "1m"     # domains that cannot
 *   skipDomains = ["internal.example.test"]
 */
import { Resolver } from 'node:dns/promises';
import { domainToASCII } from 'node:url';
import type { PluginApp } from '../../lib/plugins/api.js';

export const title = 'Refuse recipients whose domain has no MX or address';

type Verdict = 'ok' | 'none' | 'nullmx';

const TEMPORARY = new Set(['ETIMEOUT', 'ESERVFAIL', 'ECONNREFUSED', 'EREFUSED', 'ECANCELLED', 'ECONNRESET', 'EBADRESP', 'EFORMERR']);

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    cacheTtl: s.default(s.duration(), 300_000),
    negativeCacheTtl: s.default(s.duration(), 60_000),
    skipDomains: s.default(s.list(s.string()), []),
    cacheSize: s.default(s.int({ min: 1 }), 10_000),
  }));
  const { dns, routes } = app.globalConfig;
  const resolver = new Resolver({ timeout: dns.timeout, tries: 1 });
  if (dns.servers.length) resolver.setServers([...dns.servers]);
  const skip = new Set([...o.skipDomains, ...Object.keys(routes)].map((d) => d.toLowerCase()));
  const cache = new Map<string, { verdict: Verdict; untilMs: number }>();

  /** Resolves to the records, or undefined when the name has none of that type (or does not exist). */
  const lookup = async <T>(query: () => Promise<T[]>): Promise<T[] | undefined> => {
    try {
      const records = await query();
      return records.length ? records : undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENODATA' || code === 'ENOTFOUND') return undefined;
      if (!TEMPORARY.has(code)) app.logger.warn({ code }, 'unexpected DNS error');
      throw app.reject(451, 'Temporary DNS failure looking up the recipient domain, try again later', '4.4.3');
    }
  };

  const check = async (domain: string): Promise<Verdict> => {
    const mx = await lookup(() => resolver.resolveMx(domain));
    if (mx) return mx.length === 1 && (mx[0]!.exchange === '' || mx[0]!.exchange === '.') ? 'nullmx' : 'ok';
    if (await lookup(() => resolver.resolve4(domain))) return 'ok';
    if (await lookup(() => resolver.resolve6(domain))) return 'ok';
    return 'none';
  };

  app.addHook('smtp:rcpt_to', async (address) => {
    const at = address.address.lastIndexOf('@');
    const raw = at === -1 ? '' : address.address.slice(at + 1).toLowerCase();
    if (!raw || raw.startsWith('[') || skip.has(raw)) return;
    const domain = domainToASCII(raw);
    if (!domain) throw app.reject(550, `Recipient domain ${raw} does not exist`, '5.1.2');
    const now = Date.now();
    let hit = cache.get(domain);
    if (!hit || hit.untilMs <= now) {
      const verdict = await check(domain);
      const ttl = verdict === 'ok' ? o.cacheTtl : o.negativeCacheTtl;
      hit = { verdict, untilMs: now + ttl };
      cache.delete(domain);
      if (ttl > 0) {
        if (cache.size >= o.cacheSize) cache.delete(cache.keys().next().value!);
        cache.set(domain, hit);
      }
    }
    if (hit.verdict === 'none') throw app.reject(550, `Recipient domain ${raw} has no mail server (no MX or address record)`, '5.1.2');
    if (hit.verdict === 'nullmx') throw app.reject(556, `Recipient domain ${raw} does not accept mail (null MX)`, '5.1.10');
  });
}
