/**
 * A hard deadline for one DNS query (or a static route's getaddrinfo, or an MTA-STS lookup):
 * c-ares grows its own per-try timeouts on retries, so only this bounds the whole.
 */

/** A DNS query that ran past its hard deadline; `code` is the one node's resolver uses. */
export class DnsTimeoutError extends Error {
  readonly code = 'ETIMEOUT';
  constructor(ms: number) {
    super(`DNS query timed out after ${ms} ms`);
  }
}

/** `promise`, or an ETIMEOUT error after `ms` (a DNS query's hard deadline). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new DnsTimeoutError(ms)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
