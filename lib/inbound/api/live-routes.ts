/**
 * Live inbox routes, so that a test suite waits for mail instead of polling for it:
 *
 *   GET /api/inboxes/:address/wait?after=<id>&since=<time>&timeout=30s
 *       the first message newer than `after` (an id) and received at or after `since` (ISO time
 *       or ms), as soon as it is stored; without either, the newest message, or the first to
 *       come; 204 when `timeout` passes first (at most MAX_WAIT_MS)
 *   GET /api/inboxes/:address/events
 *       server-sent events: one `message` event per new message (id = the message id, data = its
 *       listing line), a comment every HEARTBEAT_MS; a reconnect with Last-Event-ID gets what it
 *       missed first
 *
 * A waiter or a stream costs a subscription and a timer, no polling. Streams per client IP are
 * capped (with the WebSocket, see ws-route.ts), and a stream ends after MAX_STREAM_MS (the client
 * reconnects with Last-Event-ID and misses nothing).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../api/errors.js';
import { parseDuration } from '../../config/spec.js';
import type { InboxEvent } from '../events.js';
import type { Inbox } from '../inbox.js';
import { isInboxId } from '../store/ids.js';
import type { InboxAccess } from './access.js';
import type { StreamSlots } from './stream-slots.js';
import { listedView, messageView } from './views.js';

export const DEFAULT_WAIT_MS = 30_000;
export const MAX_WAIT_MS = 300_000;
const HEARTBEAT_MS = 15_000;
export const MAX_STREAM_MS = 30 * 60_000;
/** messages a reconnecting stream is sent at most from before it reconnected */
const REPLAY_LIMIT = 500;

export interface LiveDeps {
  inbox: Inbox;
  access: InboxAccess;
  slots: StreamSlots;
}

const addressParams = { type: 'object', properties: { address: { type: 'string', maxLength: 400 } }, required: ['address'] } as const;

export function liveRoutes(deps: LiveDeps) {
  const { inbox, access } = deps;

  return (app: FastifyInstance) => {
    app.get('/api/inboxes/:address/wait', {
      schema: {
        params: addressParams,
        querystring: { type: 'object', properties: { after: { type: 'string', maxLength: 64 }, since: { type: 'string', maxLength: 40 }, timeout: { type: 'string', maxLength: 20 } }, additionalProperties: false },
      },
    }, async (req, reply) => {
      const { address } = req.params as { address: string };
      const q = req.query as { after?: string; since?: string; timeout?: string };
      if (q.after !== undefined && !isInboxId(q.after)) throw HttpError.badRequest('after: not a message id this API gave out');
      const sinceMs = q.since === undefined ? undefined : /^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since);
      if (sinceMs !== undefined && !Number.isFinite(sinceMs)) throw HttpError.badRequest('since: expected a time like 2026-12-03T10:00:00Z or milliseconds');
      const timeoutMs = q.timeout === undefined ? DEFAULT_WAIT_MS : parseDuration(/^\d+$/.test(q.timeout) ? Number(q.timeout) : q.timeout);
      if (timeoutMs === undefined || timeoutMs > MAX_WAIT_MS) throw HttpError.badRequest(`timeout: expected a duration like "30s", at most ${MAX_WAIT_MS / 1000}s`);
      const { inbox: name, tag, readable } = access.inbox(req, address);
      // a private inbox without its key reads as empty: nothing is found, nothing arrives
      const matches = (e: InboxEvent) => readable && (!tag || e.entry.tags.includes(tag)) && (q.after === undefined || e.envelope.id > q.after) && (sinceMs === undefined || e.envelope.receivedAt >= sinceMs);

      // listen before looking, so that nothing stored in between is missed
      let unsubscribe: () => void = () => undefined;
      let untrack: () => void = () => undefined;
      const arrived = new Promise<InboxEvent>((resolve) => {
        unsubscribe = inbox.events.subscribe(name, (e) => {
          if (matches(e)) resolve(e);
        });
      });
      try {
        const found = !readable
          ? undefined
          : q.after === undefined && sinceMs === undefined
          ? (await inbox.list(name, { limit: 1, tag: tag || undefined })).items[0]
          : (await inbox.newer(name, { after: q.after, sinceMs, tag: tag || undefined, limit: 1 }))[0];
        if (found) return await whole(found.envelope.id, name, found.entry, reply);
        // the connection's idle timeout must not end the wait first
        req.raw.socket.setTimeout(timeoutMs + 10_000);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
        const gone = new Promise<undefined>((resolve) => req.raw.once('close', () => resolve(undefined)));
        let stopping = false;
        const stopped = new Promise<undefined>((resolve) => (untrack = deps.slots.track(() => ((stopping = true), resolve(undefined)))));
        const event = await Promise.race([arrived, timedOut, gone, stopped]);
        clearTimeout(timer);
        if (stopping) throw HttpError.shuttingDown();
        if (!event) return reply.status(204).send();
        return await whole(event.envelope.id, name, event.entry, reply);
      } finally {
        unsubscribe();
        untrack();
      }
    });

    app.get('/api/inboxes/:address/events', {
      schema: { params: addressParams, querystring: { type: 'object', properties: { lastEventId: { type: 'string', maxLength: 64 } }, additionalProperties: false } },
    }, async (req, reply) => {
      const { address } = req.params as { address: string };
      const { inbox: name, tag, readable } = access.inbox(req, address);
      const header = req.headers['last-event-id'];
      const lastId = (typeof header === 'string' ? header : undefined) ?? (req.query as { lastEventId?: string }).lastEventId;
      if (lastId !== undefined && lastId !== '' && !isInboxId(lastId)) throw HttpError.badRequest('Last-Event-ID: not a message id this API gave out');
      let end = () => undefined as void;
      const release = deps.slots.take(req.ip, () => end());
      if (!release) throw new HttpError(429, 'TooManyRequests', 'Too many live streams from your address');
      end = stream(req, reply, name, tag, readable, lastId || undefined, release);
      return reply;
    });
  };

  async function whole(id: string, name: string, entry: InboxEvent['entry'], reply: FastifyReply) {
    const msg = await inbox.message(id);
    if (!msg) return reply.status(204).send();
    return reply.send(messageView(msg, { inbox: name, entry }));
  }

  /** Runs one event stream until the client goes or MAX_STREAM_MS passes; returns what ends it. */
  function stream(req: FastifyRequest, reply: FastifyReply, name: string, tag: string, readable: boolean, lastId: string | undefined, release: () => void): () => void {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // proxies (nginx) must not hold the events back
      'x-accel-buffering': 'no',
      'x-content-type-options': 'nosniff',
    });
    res.write('retry: 3000\n\n');
    req.raw.socket.setTimeout(0);
    let closed = false;
    let lastSent = lastId;
    const queue: InboxEvent[] = [];
    let replaying = lastId !== undefined;
    const send = (e: InboxEvent) => {
      if (closed || (lastSent !== undefined && e.envelope.id <= lastSent)) return;
      lastSent = e.envelope.id;
      res.write(`id: ${e.envelope.id}\nevent: message\ndata: ${JSON.stringify(listedView(name, e))}\n\n`);
    };
    const unsubscribe = inbox.events.subscribe(name, (e) => {
      if (!readable || (tag && !e.entry.tags.includes(tag))) return;
      if (replaying) queue.push(e);
      else send(e);
    });
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    const end = () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      clearTimeout(lifetime);
      unsubscribe();
      release();
      res.end();
    };
    const lifetime = setTimeout(end, MAX_STREAM_MS);
    req.raw.once('close', end);
    if (lastId !== undefined && readable) {
      inbox
        .newer(name, { after: lastId, tag: tag || undefined, limit: REPLAY_LIMIT })
        .then((missed) => {
          for (const m of missed) send({ inbox: name, envelope: m.envelope, entry: m.entry, summary: m.summary });
        })
        .catch(() => end())
        .finally(() => {
          replaying = false;
          for (const e of queue.splice(0)) send(e);
        });
    }
    return end;
  }
}
