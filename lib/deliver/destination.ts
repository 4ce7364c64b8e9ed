// STUB — replaced by the real resolver from the wt-dest branch at merge.
import dns from 'node:dns/promises';
export interface TargetHost { host: string; port: number; priority: number; addresses: { address: string; family: 4 | 6 }[] }
export interface ResolverOptions { servers?: string[]; ignoreIPv6?: boolean; allowLocalAddresses?: boolean; timeoutMs?: number }
export class DestinationError extends Error {
  code = 'EDNS' as const;
  constructor(message: string, readonly temporary: boolean, readonly enhancedStatus: string) { super(message); }
}
export class DestinationResolver {
  constructor(readonly opts: ResolverOptions) {}
  async resolve(domain: string, route?: { host: string; port: number }): Promise<TargetHost[]> {
    if (route) {
      const family = route.host.includes(':') ? 6 : 4;
      return [{ host: route.host, port: route.port, priority: 0, addresses: [{ address: route.host, family }] }];
    }
    const mx = await dns.resolveMx(domain).catch(() => []);
    if (!mx.length) throw new DestinationError(`no MX for ${domain}`, true, '4.4.3');
    return [];
  }
}
