/**
 * The route to the local inbound receiver: outbound mail for the receiver's domains is handed
 * to it directly (a static route made by the master once the receiver listens), so one machine
 * runs the whole loop: submit, queue, deliver, receive, read. An explicit [routes."DOMAIN"] of the
 * operator still wins over it; it wins over a zone's smarthost.
 */
import { domainMatcher } from '../config/domains.js';

export interface LocalRoute {
  /** the receiver's domains, as configured ("*.name" for subdomains) */
  domains: readonly string[];
  host: string;
  port: number;
  /** "may" when the receiver offers STARTTLS, else "none" (loopback either way) */
  tls: 'none' | 'may';
}

/** What a static route gives a delivery. */
export interface StaticRoute {
  host: string;
  port: number;
  tls?: string;
}

/** The static route for a recipient domain when it is one of the receiver's, else undefined. */
export function localRouter(route: LocalRoute): (domain: string) => StaticRoute | undefined {
  const ours = domainMatcher(route.domains);
  const target: StaticRoute = { host: route.host, port: route.port, tls: route.tls };
  return (domain) => (ours(domain) ? target : undefined);
}
