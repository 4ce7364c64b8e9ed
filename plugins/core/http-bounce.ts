/**
 * core/http-bounce — POSTs the details of every bounced recipient to a URL (ZoneMTA's
 * http-bounce, signed and retried). Runs on queue:bounce in the master, before the DSN is made;
 * it never holds the bounce up: the POST is queued and sent in the background.
 *
 * The body is JSON:
 *   { id, seq, zone, to, returnPath, messageId, category, status, responseCode, response, mx,
 *     attempts, time, fbl? }          (fbl: the message's X-FBL header, when it had one)
 * With a secret, the request carries X-Sluice-Timestamp and
 * X-Sluice-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">, as the events webhook.
 * A 2xx answer is success; anything else, or no answer within `timeout`, is retried after
 * retryDelay, 2×, 4× … up to maxAttempts. At most maxPending posts wait; beyond, the oldest is
 * dropped (and logged): this is a notification, the record is the log.
 *
 *   [plugins."core/http-bounce"]
 *   enabled = ["main"]
 *   url = "https://hooks.example.test/bounces"
 *   secret = "…"
 *   timeout = "10s"
 *   maxAttempts = 6
 *   retryDelay = "2s"
 *   maxPending = 10000
 *   suppressDsn = false       # true: the endpoint handles bounces, no DSN goes to the sender
 */
import { createHmac } from 'node:crypto';
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
    suppressDsn: s.default(s.bool(), false),
  }));
  const pending: { body: string; attempts: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;

  const later = (fn: () => void, ms: number) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  };

  const post = async (item: { body: string; attempts: number }): Promise<void> => {
    if (stopped) return;
    item.attempts++;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (o.secret) {
      const ts = String(Math.floor(Date.now() / 1000));
      headers['x-sluice-timestamp'] = ts;
      headers['x-sluice-signature'] = 'sha256=' + createHmac('sha256', o.secret).update(`${ts}.${item.body}`).digest('hex');
    }
    let failure: string | undefined;
    try {
      const res = await fetch(o.url, { method: 'POST', headers, body: item.body, signal: AbortSignal.timeout(o.timeout), redirect: 'error' });
      await res.body?.cancel();
      if (!res.ok) failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as Error).message;
    }
    const at = pending.indexOf(item);
    if (!failure || item.attempts >= o.maxAttempts) {
      if (at !== -1) pending.splice(at, 1);
      if (failure) app.logger.error({ attempts: item.attempts, err: failure }, 'bounce notification given up');
      return;
    }
    app.logger.warn({ attempts: item.attempts, err: failure }, 'bounce notification failed, will retry');
    later(() => void post(item), o.retryDelay * 2 ** (item.attempts - 1));
  };

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
    if (pending.length >= o.maxPending) {
      pending.shift();
      app.logger.error('too many bounce notifications waiting; the oldest was dropped');
    }
    const item = { body, attempts: 0 };
    pending.push(item);
    void post(item);
    if (o.suppressDsn) bounce.dsn = false;
  });

  app.onStop(() => {
    stopped = true;
    for (const t of timers) clearTimeout(t);
    timers.clear();
    if (pending.length) app.logger.warn({ pending: pending.length }, 'stopping with bounce notifications not sent');
  });
}
