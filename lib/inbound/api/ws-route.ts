/**
 * The inbox WebSocket, GET /api/ws (@fastify/websocket), in the spirit of Mailsac's: a client
 * subscribes to inboxes and hears of each new message in them, and of nothing else.
 *
 *   client → {"type":"subscribe","inboxes":["a@sluice.test", …]}   (also ?inboxes=a,b at connect)
 *            {"type":"unsubscribe","inboxes":[…]}
 *   server → {"type":"subscribed","inboxes":[…]}   the canonical inbox names now subscribed
 *            {"type":"message","inbox":"…","message":{…the listing line…}}
 *            {"type":"error","message":"…"}
 *
 * A socket that answers no ping for PING_MS is closed; frames are small (MAX_FRAME_BYTES); a
 * socket holds at most MAX_SUBSCRIPTIONS inboxes; sockets share the per-client stream cap with
 * the event streams.
 */
import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { WebSocket } from 'ws';
import type { Inbox } from '../inbox.js';
import type { RecipientPolicy } from '../recipients.js';
import type { InboxAccess } from './access.js';
import type { StreamSlots } from './stream-slots.js';
import { listedView } from './views.js';

const PING_MS = 30_000;
const MAX_FRAME_BYTES = 64 * 1024;
const MAX_SUBSCRIPTIONS = 100;

export interface WsDeps {
  inbox: Inbox;
  policy: RecipientPolicy;
  access: InboxAccess;
  slots: StreamSlots;
  /** how often to ping (tests shorten it) */
  pingMs?: number;
}

export function wsRoute(deps: WsDeps) {
  return async (app: FastifyInstance) => {
    await app.register(websocket, { options: { maxPayload: MAX_FRAME_BYTES } });
    // OpenAPI 3 cannot describe a WebSocket: the document names it in its description instead
    app.get('/api/ws', { websocket: true, schema: { hide: true } }, (socket, req) => {
      const release = deps.slots.take(req.ip, () => socket.close(1001, 'Sluice is stopping'));
      if (!release) {
        socket.close(1013, 'Too many live streams from your address');
        return;
      }
      // the API's idle timeout is for requests; a subscriber is kept alive by pings
      req.raw.socket.setTimeout(0);
      serve(socket, deps, (req.query as { inboxes?: string }).inboxes, deps.access.key(req), release);
    });
  };
}

function serve(socket: WebSocket, deps: WsDeps, initial: string | undefined, key: string | undefined, release: () => void): void {
  const subscriptions = new Map<string, () => void>();
  const send = (value: unknown) => {
    if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(value));
  };
  const subscribe = (addresses: unknown) => {
    if (!Array.isArray(addresses) || !addresses.every((a) => typeof a === 'string')) return send({ type: 'error', message: 'inboxes: expected a list of addresses' });
    for (const address of addresses as string[]) {
      const found = deps.policy.lookup(address);
      if (!found) return send({ type: 'error', message: `${JSON.stringify(address.slice(0, 80))} is not an email address` });
      if (subscriptions.has(address.toLowerCase())) continue;
      if (subscriptions.size >= MAX_SUBSCRIPTIONS) return send({ type: 'error', message: `at most ${MAX_SUBSCRIPTIONS} inboxes per socket` });
      const { inbox, tag } = found;
      // a private inbox without its key: subscribed, and silent (nothing tells it exists)
      const readable = deps.access.allows(inbox, key);
      subscriptions.set(
        address.toLowerCase(),
        deps.inbox.events.subscribe(inbox, (e) => {
          if (readable && (!tag || e.entry.tags.includes(tag))) send({ type: 'message', inbox, message: listedView(inbox, e) });
        }),
      );
    }
    send({ type: 'subscribed', inboxes: [...subscriptions.keys()] });
  };
  const unsubscribe = (addresses: unknown) => {
    for (const address of Array.isArray(addresses) ? addresses : []) {
      if (typeof address !== 'string') continue;
      subscriptions.get(address.toLowerCase())?.();
      subscriptions.delete(address.toLowerCase());
    }
    send({ type: 'subscribed', inboxes: [...subscriptions.keys()] });
  };

  let alive = true;
  socket.on('pong', () => (alive = true));
  const pinger = setInterval(() => {
    if (!alive) return socket.terminate();
    alive = false;
    socket.ping();
  }, deps.pingMs ?? PING_MS);

  socket.on('message', (data, isBinary) => {
    let msg: { type?: unknown; inboxes?: unknown };
    try {
      msg = isBinary ? {} : (JSON.parse(data.toString()) as typeof msg);
    } catch {
      return send({ type: 'error', message: 'expected a JSON object like {"type":"subscribe","inboxes":["a@sluice.test"]}' });
    }
    if (msg.type === 'subscribe') subscribe(msg.inboxes);
    else if (msg.type === 'unsubscribe') unsubscribe(msg.inboxes);
    else send({ type: 'error', message: 'type: expected "subscribe" or "unsubscribe"' });
  });
  socket.on('close', () => {
    clearInterval(pinger);
    for (const stop of subscriptions.values()) stop();
    subscriptions.clear();
    release();
  });
  if (initial) subscribe(initial.split(',').map((a) => a.trim()).filter(Boolean));
}
