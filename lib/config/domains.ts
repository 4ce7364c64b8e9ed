/**
 * Domain lists as the config writes them: exact names, and "*.name" for every subdomain of name
 * (not name itself). Matching ignores case and takes the ASCII (punycode) form of the domain, so
 * a Unicode spelling and its xn-- form are the same domain, and a look-alike is not.
 */
import { domainToASCII } from 'node:url';

export type DomainMatcher = (domain: string) => boolean;

export function domainMatcher(patterns: readonly string[]): DomainMatcher {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const p of patterns) {
    const lower = p.toLowerCase();
    if (lower.startsWith('*.')) suffixes.push(lower.slice(1));
    else exact.add(lower);
  }
  return (domain) => {
    const ascii = asciiDomain(domain);
    if (!ascii) return false;
    if (exact.has(ascii)) return true;
    return suffixes.some((s) => ascii.length > s.length && ascii.endsWith(s));
  };
}

/** The lower-case ASCII form of a domain, or '' when it is not a valid domain name. */
export function asciiDomain(domain: string): string {
  // an address literal ([127.0.0.1]) or anything with brackets is never one of our domains
  if (!domain || /[[\]\s]/.test(domain)) return '';
  return domainToASCII(domain.toLowerCase());
}
