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
 * retryDelay, 2×, 4× … up to maxAttempts.
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
import { createHmac } from 'node:crypto';
import type { BounceInfo, PluginApp } from '../../lib/plugins/api.js';

export const title = 'HTTP bounce notification';

const DROP_LOG_EVERY_MS = 10_000;

interface Item {
  body: string;
  attempts: number;
  /** set while its request is in flight */
  request?: AbortController;
  /** set while it waits for its next attempt */
  retry?: NodeJS.Timeout;
}

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
  /** every item kept, oldest first (a Set keeps insertion order) */
  const kept = new Set<Item>();
  /** items due to be sent, in order */
  const ready: Item[] = [];
  let inFlight = 0;
  let stopped = false;
  let dropped = 0;
  let lastDropLog = 0;

  const drop = (item: Item) => {
    kept.delete(item);
    item.request?.abort();
    clearTimeout(item.retry);
    dropped++;
    const now = Date.now();
    if (now - lastDropLog >= DROP_LOG_EVERY_MS) {
      app.logger.error({ dropped, pending: kept.size }, `too many bounce notifications waiting; ${dropped} dropped (the oldest first)`);
      lastDropLog = now;
      dropped = 0;
    }
  };

  /** The oldest item not in flight (a request under way is nearly done); else the oldest. */
  const oldestToDrop = (): Item => {
    for (const item of kept) if (!item.request) return item;
    return kept.values().next().value!;
  };

  const pump = () => {
    while (!stopped && inFlight < o.concurrency && ready.length) {
      const item = ready.shift()!;
      if (!kept.has(item)) continue; // dropped while it waited
      inFlight++;
      void post(item).finally(() => {
        inFlight--;
        pump();
      });
    }
  };

  const post = async (item: Item): Promise<void> => {
    item.attempts++;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (o.secret) {
      const ts = String(Math.floor(Date.now() / 1000));
      headers['x-sluice-timestamp'] = ts;
      headers['x-sluice-signature'] = 'sha256=' + createHmac('sha256', o.secret).update(`${ts}.${item.body}`).digest('hex');
    }
    const request = (item.request = new AbortController());
    let failure: string | undefined;
    try {
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(o.timeout)]);
      const res = await fetch(o.url, { method: 'POST', headers, body: item.body, signal, redirect: 'error' });
      await res.body?.cancel();
      if (!res.ok) failure = `HTTP ${res.status}`;
    } catch (err) {
      failure = (err as Error).message;
    } finally {
      item.request = undefined;
    }
    if (!kept.has(item) || stopped) return; // dropped (and aborted) meanwhile
    if (!failure || item.attempts >= o.maxAttempts) {
      kept.delete(item);
      if (failure) app.logger.error({ attempts: item.attempts, err: failure }, 'bounce notification given up');
      return;
    }
    app.logger.warn({ attempts: item.attempts, err: failure }, 'bounce notification failed, will retry');
    item.retry = setTimeout(() => {
      item.retry = undefined;
      if (!kept.has(item)) return;
      ready.push(item);
      pump();
    }, o.retryDelay * 2 ** (item.attempts - 1));
    item.retry.unref();
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
    if (o.suppressDsn) bounce.dsn = false;
    if (stopped) return;
    while (kept.size >= o.maxPending) drop(oldestToDrop());
    const item: Item = { body, attempts: 0 };
    kept.add(item);
    ready.push(item);
    pump();
  });

  app.onStop(() => {
    stopped = true;
    if (kept.size) app.logger.warn({ pending: kept.size }, 'stopping with bounce notifications not sent');
    for (const item of kept) {
      item.request?.abort();
      clearTimeout(item.retry);
    }
    kept.clear();
    ready.length = 0;
  });
}
