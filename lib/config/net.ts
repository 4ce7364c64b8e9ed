/**
 * Address helpers the config and the listeners share: is a host loopback, does an address fall
 * in a list of CIDR blocks (IPv4-mapped IPv6 addresses count as their IPv4 form).
 */
import ipaddr from 'ipaddr.js';

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (!ipaddr.isValid(host)) return false;
  return normalize(host).range() === 'loopback';
}

export function isCidr(value: string): boolean {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return ipaddr.isValid(value);
  }
}

/** A block that holds every address of its family ("0.0.0.0/0", "::/0"). */
export function isCatchAll(value: string): boolean {
  try {
    return ipaddr.parseCIDR(value)[1] === 0;
  } catch {
    return false;
  }
}

function normalize(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

/**
 * Remembers a function of an address for the addresses seen last. A listener asks the same few
 * questions about each client several times per message (caps, exemptions, PROXY peers), and
 * parsing an address each time was a measurable part of a session's cost; the answers never
 * change for a given string. Bounded: the memory starts afresh after MEMO_SIZE addresses.
 */
const MEMO_SIZE = 4096;
function memoByAddress<T>(fn: (address: string) => T): (address: string) => T {
  let seen = new Map<string, T>();
  return (address) => {
    let value = seen.get(address);
    if (value === undefined && !seen.has(address)) {
      value = fn(address);
      if (seen.size >= MEMO_SIZE) seen = new Map();
      seen.set(address, value);
    }
    return value as T;
  };
}

/** Compiles a list of CIDR blocks (or single addresses) into a fast membership test. */
export function networkMatcher(blocks: readonly string[]): (address: string | undefined) => boolean {
  if (!blocks.length) return () => false;
  const ranges = blocks.map((b) => (b.includes('/') ? ipaddr.parseCIDR(b) : ([ipaddr.parse(b), ipaddr.parse(b).kind() === 'ipv4' ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number])));
  const matches = memoByAddress((address) => {
    if (!ipaddr.isValid(address)) return false;
    const ip = normalize(address);
    return ranges.some(([net, bits]) => net.kind() === ip.kind() && ip.match(net, bits));
  });
  return (address) => (address ? matches(address) : false);
}

/**
 * The key limits per client are counted under: an IPv4 address as it is (an IPv4-mapped IPv6
 * address as its IPv4 form), an IPv6 address by its /64, the smallest block one customer usually
 * gets, so that a host cannot pass a per-IP cap by using the addresses of its own network.
 */
export function clientKey(address: string | undefined): string {
  return address ? keyOf(address) : 'unknown';
}

const keyOf = memoByAddress((address) => {
  if (!ipaddr.isValid(address)) return address;
  const ip = normalize(address);
  if (ip.kind() === 'ipv4') return ip.toString();
  const parts = (ip as ipaddr.IPv6).parts;
  return `${parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
});
