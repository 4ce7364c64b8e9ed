/**
 * ZoneMTA's inspection routes, in its shapes, so that its users' scripts and dashboards keep
 * working: GET /zones, GET /counter/:type/:zone and GET /fetch/:id. (POST /send-raw and the
 * reply shape of /send are in send-raw-route.ts and send-envelope.ts.)
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { isQueueId } from '../queue/ids.js';
import type { QueueStore } from '../queue/store.js';
import type { ZoneSelector } from '../zones/select.js';
import { HttpError } from './errors.js';

const counterParams = {
  type: 'object',
  properties: { type: { type: 'string', maxLength: 32 }, zone: { type: 'string', maxLength: 64 } },
  required: ['type', 'zone'],
} as const;
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

export function zonemtaRoutes(deps: { store: QueueStore; zones: ZoneSelector }) {
  return (app: FastifyInstance) => {
    // ?includeDisabled is taken and changes nothing: every zone here is in use
    app.get('/zones', { schema: { querystring: { type: 'object', properties: { includeDisabled: { type: 'string' } } } } }, async () =>
      deps.zones.names().map((name) => ({ name })),
    );

    // ZoneMTA counts by zone (`/counter/zone/default`); each state lists its recipient domains
    app.get('/counter/:type/:zone', { schema: { params: counterParams } }, async (req) => {
      const { type, zone } = req.params as { type: string; zone: string };
      if (type !== 'zone') throw HttpError.notFound(`No counter of type ${JSON.stringify(type)}: counters are kept per zone (/counter/zone/${zone})`);
      if (!deps.zones.has(zone)) throw HttpError.notFound(`No sending zone ${JSON.stringify(zone)}`);
      const snap = deps.store.counters.snapshot(zone);
      if (snap.loading) throw HttpError.queueCounting(deps.store.counters.loadedRows);
      const state = (pick: 'queued' | 'deferred', rows: number) => ({
        rows,
        entries: snap.domains.filter((d) => d[pick] > 0).map((d) => ({ key: d.domain, value: d[pick] })),
      });
      return { zone, active: state('queued', snap.queued), deferred: state('deferred', snap.deferred) };
    });

    // the stored message as it will be sent, less what is added at sending (DKIM signatures);
    // ?body=yes: the body only
    app.get('/fetch/:id', { schema: { params: idParams, querystring: { type: 'object', properties: { body: { type: 'string' } } } } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const meta = isQueueId(id) ? await deps.store.getMeta(id) : undefined;
      if (!meta) throw HttpError.notFound(`No message ${JSON.stringify(id.slice(0, 64))} in the queue`);
      const bodyOnly = /^(yes|true|1)$/i.test((req.query as { body?: string }).body ?? '');
      const store = deps.store;
      async function* message(): AsyncGenerator<Buffer> {
        if (!bodyOnly) yield Buffer.from(meta!.headers, 'latin1');
        yield* store.readBody(id);
      }
      return reply.type('message/rfc822').header('content-disposition', `attachment; filename="${id}.eml"`).send(Readable.from(message()));
    });
  };
}
