/**
 * SPF, DKIM and DMARC of a received message, checked with mailauth against the configured DNS
 * servers (the same [dns] the delivery side uses, so tests point both at a server on loopback).
 * The results are stored with the message for the test suites that want them; nothing here ever
 * refuses mail. ARC is checked too when present; BIMI (a logo lookup) is not.
 */
import { Resolver } from 'node:dns/promises';
import type { Readable } from 'node:stream';
import { authenticate, type DNSResolver } from 'mailauth';
import type { AuthResults, ClientInfo } from '../store/types.js';

/** One whole check may take this long; after it the message is stored without results. */
export const AUTH_DEADLINE_MS = 20_000;

export interface AuthCheckOptions {
  /** "address:port" of the resolvers; empty: the system's */
  dnsServers: readonly string[];
  /** one DNS query may take this long */
  dnsTimeoutMs: number;
  /** our host name, for the Authentication-Results header */
  hostname: string;
}

export class AuthChecker {
  private readonly resolver: DNSResolver;

  constructor(private readonly opts: AuthCheckOptions) {
    const tries = 2;
    const r = new Resolver({ timeout: Math.max(1, Math.floor(opts.dnsTimeoutMs / tries)), tries });
    if (opts.dnsServers.length) r.setServers([...opts.dnsServers]);
    this.resolver = (name, rrtype) => r.resolve(name, rrtype) as Promise<string[][] | string[]>;
  }

  /** The results for a message read from `message`, sent by `sender` from `client`. */
  async check(message: Readable, sender: string, client: ClientInfo): Promise<AuthResults> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the checks took longer than ${AUTH_DEADLINE_MS} ms`)), AUTH_DEADLINE_MS);
      // mailauth does not settle when its source fails (the store reopening under the read)
      message.once('error', reject);
    });
    try {
      const r = await Promise.race([
        authenticate(message, {
          ip: client.ip,
          helo: client.helo,
          sender: sender || undefined,
          mta: this.opts.hostname,
          resolver: this.resolver,
          disableBimi: true,
        }),
        deadline,
      ]);
      const ar = /^Authentication-Results:\s*([\s\S]*?)\r?\n(?![ \t])/m.exec(r.headers);
      return {
        spf: r.spf ? { result: r.spf.status.result, domain: r.spf.domain ?? null, info: r.spf.info } : { result: 'none', domain: null, info: '' },
        dkim: (r.dkim.results ?? []).map((d) => ({
          result: d.status.result,
          domain: d.signingDomain ?? null,
          selector: d.selector ?? null,
          aligned: Boolean(d.status.aligned),
          info: d.info,
        })),
        dmarc: r.dmarc ? { result: r.dmarc.status.result, domain: r.dmarc.domain ?? null, policy: r.dmarc.policy ?? null, info: r.dmarc.info } : null,
        header: ar ? ar[1]!.replace(/\r?\n[ \t]+/g, ' ').trim() : '',
      };
    } finally {
      clearTimeout(timer);
      message.destroy();
    }
  }
}
