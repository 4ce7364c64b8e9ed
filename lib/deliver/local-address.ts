/**
 * What counts as a local address: our own machine and networks, and what cannot be a host.
 * Answers from DNS in these ranges are refused (unless allowLocalAddresses), so that the outbound
 * MTA cannot be pointed at our own network; operator-configured routes may point anywhere.
 */
import ipaddr from 'ipaddr.js';

/** Ranges refused in DNS answers: our own machine and networks, and what cannot be a host. */
const LOCAL_RANGES = new Set([
  'unspecified',
  'broadcast',
  'multicast',
  'linkLocal',
  'loopback',
  'carrierGradeNat',
  'private',
  'uniqueLocal',
  'deprecatedSiteLocal',
]);

export function isLocalAddress(address: string): boolean {
  if (!ipaddr.isValid(address)) return true; // not an address at all: never connect to it
  let ip = ipaddr.parse(address);
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address();
  return LOCAL_RANGES.has(ip.range());
}
