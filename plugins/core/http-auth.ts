/**
 * core/http-auth — SMTP AUTH checked against an HTTP endpoint: Sluice sends
 * `GET <url>?transport=SMTP` with the client's user name and password as HTTP Basic auth
 * (ZoneMTA's http-auth does the same).
 *
 *   2xx                    the login is accepted
 *   401 or 403             the endpoint says no: this plugin passes, so [smtp.users] may still
 *                          accept the login; nobody does → 535 5.7.8
 *   anything else, a timeout, no connection
 *                          454 4.7.0 temporary authentication failure (the client retries)
 *
 * Answers are cached for a short time (per user name and password, by hash, never in clear) so
 * that a client that logs in for every message does not cost one HTTP call each. The URL must be
 * https, or http to a loopback address: the passwords are in every request.
 *
 *   [plugins."core/http-auth"]
 *   enabled = ["main"]
 *   url = "https://auth.example.test/smtp"
 *   timeout = "5s"
 *   cacheTtl = "60s"          # accepted logins; "0s": no cache
 *   failureCacheTtl = "10s"   # refused logins (also slows down password guessing at the endpoint)
 *   cacheSize = 10000         # entries at most
 */
import { createHash } from 'node:crypto';
import type { PluginApp } from '../../lib/plugins/api.js';

export const title = 'HTTP Basic authentication for SMTP AUTH';

/** An http:// URL whose host is not this machine's loopback. */
function clearTextBeyondLoopback(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false; // not a URL at all: the pattern's message says so
  }
  if (parsed.protocol !== 'http:') return false;
  const host = parsed.hostname;
  return !(host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host));
}

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    url: s.string({
      pattern: /^https?:\/\/[^\s]+$/,
      hint: 'an http(s) URL',
      refuse: (url) => (clearTextBeyondLoopback(url) ? 'plain http would send every password in clear: use https (http only to a loopback address)' : undefined),
    }),
    timeout: s.default(s.duration({ min: 100 }), 5000),
    cacheTtl: s.default(s.duration(), 60_000),
    failureCacheTtl: s.default(s.duration(), 10_000),
    cacheSize: s.default(s.int({ min: 1 }), 10_000),
  }));
  const cache = new Map<string, { ok: boolean; untilMs: number }>();

  const ask = async (username: string, password: string): Promise<boolean> => {
    const url = new URL(o.url);
    url.searchParams.set('transport', 'SMTP');
    const basic = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
    let res: Response;
    try {
      res = await fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(o.timeout), redirect: 'error' });
      await res.body?.cancel();
    } catch (err) {
      app.logger.warn({ err: (err as Error).message }, 'auth endpoint unreachable');
      throw app.reject(454, 'Temporary authentication failure, try again later', '4.7.0');
    }
    if (res.ok) return true;
    if (res.status === 401 || res.status === 403) return false;
    app.logger.warn({ status: res.status }, `auth endpoint answered ${res.status}`);
    throw app.reject(454, 'Temporary authentication failure, try again later', '4.7.0');
  };

  app.addHook('smtp:auth', async (auth) => {
    // Basic auth cannot carry a ":" in the user name (RFC 7617); such a login is not ours
    if (!auth.username || auth.username.includes(':') || !auth.password) return;
    const key = createHash('sha256').update(auth.username).update('\0').update(auth.password).digest('base64');
    const now = Date.now();
    const hit = cache.get(key);
    let ok: boolean;
    if (hit && hit.untilMs > now) {
      ok = hit.ok;
    } else {
      ok = await ask(auth.username, auth.password);
      const ttl = ok ? o.cacheTtl : o.failureCacheTtl;
      cache.delete(key);
      if (ttl > 0) {
        if (cache.size >= o.cacheSize) cache.delete(cache.keys().next().value!);
        cache.set(key, { ok, untilMs: now + ttl });
      }
    }
    if (ok) auth.accept();
  });
}
