/**
 * core/rspamd — checks outgoing messages with Rspamd (/checkv2) and acts on its verdict: accept,
 * tag (X-Spam-Flag / X-Spam-Status headers), reject (550 5.7.1), defer (451 4.7.1) or send the
 * message through another zone.
 *
 * It runs on message:store, when the whole message is in the queue but not yet committed: it
 * streams the stored message (info.read()) to Rspamd, so memory stays bounded and the client's
 * reply waits for the verdict. A zone chosen here is applied on queue:route, which follows.
 *
 *   [plugins."core/rspamd"]
 *   enabled = ["main"]
 *   url = "http://127.0.0.1:11333"   # Rspamd's normal worker (or the proxy)
 *   timeout = "10s"                  # keep it below [hooks] timeout
 *   failOpen = true                  # Rspamd down or slow: true → accept unchecked; false → 451
 *   maxSize = "10MB"                 # bigger messages are not checked
 *   origins = ["smtp", "api"]        # which doors: smtp, api, bounce
 *   rejectMessage = "Message rejected as spam"
 *   [plugins."core/rspamd".actions]  # Rspamd action → accept | tag | reject | defer | zone:NAME
 *   "reject" = "reject"
 *   "soft reject" = "defer"
 *   "rewrite subject" = "tag"
 *   "add header" = "tag"
 *   "greylist" = "accept"            # greylisting our own outgoing mail makes no sense
 *   "no action" = "accept"
 */
import type { HookEnvelope, PluginApp } from '../../../lib/plugins/api.js';
import { RspamdClient, RspamdError, type RspamdResult } from './client.js';

export const title = 'Rspamd spam check';

const DEFAULT_ACTIONS: Record<string, string> = {
  reject: 'reject',
  'soft reject': 'defer',
  'rewrite subject': 'tag',
  'add header': 'tag',
  greylist: 'accept',
  'no action': 'accept',
};

type Decision = { kind: 'accept' | 'tag' | 'reject' | 'defer' } | { kind: 'zone'; zone: string };

export function init(app: PluginApp): void {
  const o = app.options((s) => ({
    url: s.string({ pattern: /^https?:\/\/[^\s]+$/, hint: 'an http(s) URL like "http://127.0.0.1:11333"' }),
    timeout: s.default(s.duration({ min: 100 }), 10_000),
    failOpen: s.default(s.bool(), true),
    maxSize: s.default(s.size(), 10 * 1024 * 1024),
    origins: s.default(s.list(s.string({ oneOf: ['smtp', 'api', 'bounce'] })), ['smtp', 'api']),
    rejectMessage: s.default(s.string({ pattern: /^[^\r\n]+$/ }), 'Message rejected as spam'),
    actions: s.default(s.map(s.string({ pattern: /^(accept|tag|reject|defer|zone:[A-Za-z0-9][A-Za-z0-9_.-]*)$/, hint: 'accept, tag, reject, defer or zone:NAME' })), {}),
  }));
  const { zones, hooks } = app.globalConfig;
  const actions = new Map<string, Decision>();
  for (const [action, what] of Object.entries({ ...DEFAULT_ACTIONS, ...o.actions })) {
    if (what.startsWith('zone:')) {
      const zone = what.slice('zone:'.length);
      if (!zones[zone]) throw new Error(`actions.${JSON.stringify(action)}: no zone ${JSON.stringify(zone)} in [zones]`);
      actions.set(action, { kind: 'zone', zone });
    } else {
      actions.set(action, { kind: what as 'accept' | 'tag' | 'reject' | 'defer' });
    }
  }
  if (o.timeout >= hooks.timeout) app.logger.warn(`timeout (${o.timeout} ms) is not below [hooks] timeout (${hooks.timeout} ms): a slow Rspamd fails the hook (451) instead of failing ${o.failOpen ? 'open' : 'with 451'}`);
  const client = new RspamdClient(o.url, o.timeout);
  const routed = new WeakMap<HookEnvelope, string>();

  app.addHook('message:store', async (envelope, info) => {
    if (!o.origins.includes(envelope.origin.via)) return;
    if (info.size > o.maxSize) {
      app.logger.info({ id: envelope.id, size: info.size }, 'message too big for the spam check; not checked');
      return;
    }
    let result: RspamdResult;
    try {
      result = await client.check({
        message: info.read(),
        from: envelope.from,
        rcpt: envelope.to,
        ip: envelope.origin.originatingIp ?? envelope.origin.remoteAddress,
        helo: envelope.session?.hostNameAppearsAs,
        user: envelope.origin.user,
        queueId: envelope.id,
      });
    } catch (err) {
      if (!(err instanceof RspamdError)) throw err;
      app.logger.warn({ id: envelope.id, err: err.message }, `spam check failed: ${err.message}; ${o.failOpen ? 'accepting unchecked' : 'deferring'}`);
      if (o.failOpen) return;
      throw app.reject(451, 'Spam check unavailable, try again later', '4.7.1');
    }
    const decision = actions.get(result.action) ?? { kind: 'accept' };
    app.logger.info({ id: envelope.id, action: result.action, score: result.score, symbols: result.symbols.slice(0, 50), decision: decision.kind === 'zone' ? `zone:${decision.zone}` : decision.kind }, `spam check: ${result.action} (${result.score})`);
    switch (decision.kind) {
      case 'accept':
        return;
      case 'reject':
        throw app.reject(550, o.rejectMessage, '5.7.1');
      case 'defer':
        throw app.reject(451, 'Message held by the spam check, try again later', '4.7.1');
      case 'tag':
        // ours replace any a client sent, at the bottom (below our Received header)
        info.headers.remove('X-Spam-Flag');
        info.headers.remove('X-Spam-Status');
        info.headers.add('X-Spam-Flag', 'YES', Infinity);
        info.headers.add('X-Spam-Status', statusLine(result), Infinity);
        return;
      case 'zone':
        routed.set(envelope, decision.zone);
        return;
    }
  });

  app.addHook('queue:route', (envelope, routing) => {
    const zone = routed.get(envelope);
    if (zone) routing.zones.fill(zone);
  });
}

function statusLine(r: RspamdResult): string {
  const required = Number.isFinite(r.requiredScore) ? ` required=${r.requiredScore.toFixed(2)}` : '';
  const tests = r.symbols.length ? ` tests=[${r.symbols.slice(0, 30).join(', ')}]` : '';
  return `Yes, score=${r.score.toFixed(2)}${required} action="${r.action}"${tests}`;
}
