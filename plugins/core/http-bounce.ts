/**
 * core/http-bounce — POSTs the details of every bounced recipient to a URL (ZoneMTA's
 * http-bounce, signed and retried). Runs on queue:bounce in the master, before the DSN is made;
 * it never holds the bounce up: the POST is queued and sent in the background.
 *
 * The body is JSON:
 *   { id, seq, zone, to, returnPath, messageId, category, status, responseCode, response, mx,
 *     attempts, time, fbl? }          (fbl: the message's X-FBL header, when it had one)
 * It goes through Sluice's webhook sender (app.webhook): an X-Sluice-Event-Id, and with a secret
 * X-Sluice-Timestamp and X-Sluice-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">, as
 * every webhook of Sluice. A 2xx answer is success; anything else, or no answer within `timeout`,
 * is retried after retryDelay, 2×, 4× … up to maxAttempts.
 *
 * Bounded: at most `concurrency` requests are in flight, and at most maxPending notifications
 * are kept (waiting, in flight or between retries). Beyond that the oldest one not in flight is
 * dropped (the oldest of all when every one is in flight: its request is aborted), and a dropped
 * one is never tried again. This is a notification, the record is the log; drops are logged, at
 * most one line per 10 s with the count.
 *
 *   [plugins."core/http-bounce"]
 *   enabled = ["main"]
 *   url = "https://hooks.example.test/bounces"
 *   secret = "…"
 *   timeout = "10s"
 *   maxAttempts = 6
 *   retryDelay = "2s"
 *   maxPending = 10000
 *   concurrency = 4
 *   suppressDsn = false       # true: the endpoint handles bounces, no DSN goes to the sender
 */
import type { BounceInfo, PluginApp } from '../../lib/plugins/api.js';

export const title = 'HTTP bounce notification';

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    url: s.string({ pattern: /^https?:\/\/[^\s]+$/, hint: 'an http(s) URL' }),
    secret: s.optString(),
    timeout: s.default(s.duration({ min: 100 }), 10_000),
    maxAttempts: s.default(s.int({ min: 1, max: 100 }), 6),
    retryDelay: s.default(s.duration({ min: 10 }), 2000),
    maxPending: s.default(s.int({ min: 1 }), 10_000),
    concurrency: s.default(s.int({ min: 1, max: 100 }), 4),
    suppressDsn: s.default(s.bool(), false),
  }));
  // Sluice's webhook sender: signing, the bounds and the retries are its
  const hook = app.webhook({
    url: o.url,
    secret: o.secret,
    timeoutMs: o.timeout,
    maxAttempts: o.maxAttempts,
    retryAfterMs: (n) => o.retryDelay * 2 ** (n - 1),
    concurrency: o.concurrency,
    maxPending: o.maxPending,
  });

  app.addHook('queue:bounce', (bounce: BounceInfo) => {
    const fbl = bounce.headers.getFirst('x-fbl');
    const body = JSON.stringify({
      id: bounce.id,
      seq: bounce.seq,
      zone: bounce.zone,
      to: bounce.to,
      returnPath: bounce.from,
      messageId: bounce.messageId,
      category: bounce.category,
      status: bounce.status,
      responseCode: bounce.responseCode,
      response: bounce.response,
      mx: bounce.mx,
      attempts: bounce.attempts,
      time: new Date(bounce.time).toISOString(),
      ...(fbl ? { fbl } : {}),
    });
    if (o.suppressDsn) bounce.dsn = false;
    hook.send(body, 'bounce');
  });
}
