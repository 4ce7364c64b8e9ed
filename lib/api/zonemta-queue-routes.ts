/**
 * ZoneMTA's queue routes, in its shapes: GET /queued/:type/:zone (a page of a zone's waiting or
 * deferred rows), DELETE /message/:id/:seq (one row) and PUT /message/:id/:seq (one row due now).
 * They run on the same operations as Sluice's own (lib/queue/admin.ts): a row a worker is
 * delivering at that moment is left alone (409), as ZoneMTA skips a locked row.
 */
import type { FastifyInstance } from 'fastify';
import type { QueueAdmin } from '../queue/admin.js';
import { isQueueId } from '../queue/ids.js';
import { selectRows } from '../queue/select.js';
import type { QueueStore } from '../queue/store.js';
import type { ZoneSelector } from '../zones/select.js';
import { HttpError } from './errors.js';
import { errorReplies } from './response-schemas.js';

/** Rows GET /queued reads at most for one page (its `start` is an offset into a walk). */
const MAX_QUEUED_SCAN = 200_000;

const rowParams = {
  type: 'object',
  properties: { id: { type: 'string', maxLength: 64 }, seq: { type: 'string', pattern: '^[0-9a-fA-F]{1,4}$', description: 'the row, in hex as ZoneMTA writes it (001)' } },
  required: ['id', 'seq'],
} as const;

const successReply = { type: 'object', properties: { success: { type: 'boolean' }, id: { type: 'string' }, seq: { type: 'string' } }, required: ['success'] } as const;

const queuedReply = {
  type: 'object',
  properties: {
    zone: { type: 'string' },
    type: { type: 'string' },
    list: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          seq: { type: 'string' },
          zone: { type: 'string' },
          recipient: { type: 'string' },
          created: { type: 'string', format: 'date-time' },
          queued: { type: 'string', format: 'date-time', description: 'when the row is due' },
          deferred: { type: 'integer', description: 'attempts so far' },
        },
        required: ['id', 'seq', 'zone', 'recipient', 'created', 'queued', 'deferred'],
      },
    },
  },
  required: ['zone', 'type', 'list'],
} as const;

export function zonemtaQueueRoutes(deps: { store: QueueStore; admin: QueueAdmin; zones: ZoneSelector }) {
  const row = async (params: unknown) => {
    const { id, seq } = params as { id: string; seq: string };
    const n = parseInt(seq, 16);
    const [found] = isQueueId(id) ? await deps.store.getRowsAt(id, [n]) : [undefined];
    if (!found) throw HttpError.notFound(`No delivery ${JSON.stringify(`${id.slice(0, 64)}.${seq}`)} in the queue`);
    return found;
  };
  const busy = (id: string, seq: number) => new HttpError(409, 'Conflict', `Delivery ${id}.${seq.toString(16).padStart(3, '0')} is being attempted right now; try again when the attempt is over`);

  return (app: FastifyInstance) => {
    app.get(
      '/queued/:type/:zone',
      {
        schema: {
          params: { type: 'object', properties: { type: { type: 'string', maxLength: 32 }, zone: { type: 'string', maxLength: 64 } }, required: ['type', 'zone'] },
          querystring: {
            type: 'object',
            properties: {
              sort: { type: 'string', enum: ['id', 'created', 'queued'], description: 'id and created are one order here (ids sort by creation); queued is taken as created' },
              order: { type: 'string', enum: ['asc', 'desc'] },
              start: { type: 'string', pattern: '^[0-9]{1,7}$' },
              pageSize: { type: 'string', pattern: '^[0-9]{1,4}$' },
            },
          },
          response: { 200: queuedReply, ...errorReplies },
        },
      },
      async (req) => {
        const { type, zone } = req.params as { type: string; zone: string };
        if (!deps.zones.has(zone)) throw HttpError.notFound(`No sending zone ${JSON.stringify(zone)}`);
        const q = req.query as { order?: 'asc' | 'desc'; start?: string; pageSize?: string };
        const start = Number(q.start ?? 0);
        const pageSize = Math.min(1000, Math.max(1, Number(q.pageSize ?? 1000)));
        // ZoneMTA: `deferred`, or anything else for the rows waiting their first attempt
        const status = type === 'deferred' ? 'deferred' : 'queued';
        const list = [];
        let skipped = 0;
        const walk = selectRows(deps.store, { zone, status }, { nowMs: Date.now(), newestFirst: q.order !== 'asc', maxRead: MAX_QUEUED_SCAN });
        for await (const { row } of walk) {
          if (skipped++ < start) continue;
          list.push({ id: row.id, seq: row.seq.toString(16).padStart(3, '0'), zone: row.zone, recipient: row.recipient, created: new Date(row.created).toISOString(), queued: new Date(row.due).toISOString(), deferred: row.attempts });
          if (list.length >= pageSize) break;
        }
        await walk.return(undefined);
        return { zone, type, list };
      },
    );

    app.delete('/message/:id/:seq', { schema: { params: rowParams, response: { 200: successReply, ...errorReplies } } }, async (req) => {
      const r = await row(req.params);
      const result = await deps.admin.run('delete', { id: r.id, seq: r.seq }, { by: 'api' });
      if (result.busy) throw busy(r.id, r.seq);
      if (!result.changed) throw HttpError.notFound(`No delivery ${r.id}.${r.seq.toString(16).padStart(3, '0')} in the queue`);
      return { success: true, id: r.id, seq: r.seq.toString(16).padStart(3, '0') };
    });

    app.put('/message/:id/:seq', { schema: { params: rowParams, response: { 200: successReply, ...errorReplies } } }, async (req) => {
      const r = await row(req.params);
      if (r.status === 'held') throw new HttpError(409, 'Conflict', `Delivery ${r.id}.${r.seq.toString(16).padStart(3, '0')} is held; release it (POST /admin/release) to make it due`);
      const result = await deps.admin.run('flush', { id: r.id, seq: r.seq }, { by: 'api' });
      if (result.busy) throw busy(r.id, r.seq);
      return { success: true, id: r.id, seq: r.seq.toString(16).padStart(3, '0') };
    });
  };
}
