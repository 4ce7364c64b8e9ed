/**
 * Queue inspection: GET /queue/:zone, GET /message/:id, DELETE /message/:id, with ZoneMTA's
 * reply shapes so its users' tools keep working.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { logEvent } from '../log/logger.js';
import { releaseDeleted } from '../plugins/outcome-hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import { isQueueId } from '../queue/ids.js';
import type { QueueStore } from '../queue/store.js';
import type { DeliveryRow } from '../queue/types.js';
import type { ZoneSelector } from '../zones/select.js';
import { HttpError } from './errors.js';
import { deletedReply, errorReplies, messageReply, zoneReply } from './response-schemas.js';

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
const zoneParams = { type: 'object', properties: { zone: { type: 'string', maxLength: 64 } }, required: ['zone'] } as const;

/** A delivery row as the API shows it. */
export function rowView(row: DeliveryRow) {
  return {
    id: row.id,
    seq: row.seq.toString(16).padStart(3, '0'),
    zone: row.zone,
    recipient: row.recipient,
    status: row.status === 'deferred' ? 'DEFERRED' : row.status === 'held' ? 'HELD' : 'QUEUED',
    queued: new Date(row.due).toISOString(),
    ...(row.attempts > 0
      ? {
          deferred: {
            first: row.firstFailure ?? null,
            count: row.attempts,
            last: row.lastAttempt ?? null,
            next: row.due,
            response: row.lastResponse ?? null,
            category: row.category ?? null,
            mx: row.lastMx ?? null,
            tls: row.lastTls ?? null,
            tlsPolicy: row.lastTlsPolicy ?? null,
          },
        }
      : {}),
  };
}

export function queueRoutes(deps: { store: QueueStore; zones: ZoneSelector; logger: Logger; hooks?: HookRunner }) {
  return (app: FastifyInstance) => {
    app.get('/queue/:zone', { schema: { params: zoneParams, response: { 200: zoneReply, ...errorReplies } } }, async (req) => {
      const { zone } = req.params as { zone: string };
      if (!deps.zones.has(zone)) throw HttpError.notFound(`No sending zone ${JSON.stringify(zone)}`);
      const snap = deps.store.counters.snapshot(zone);
      if (snap.loading) throw HttpError.queueCounting(deps.store.counters.loadedRows);
      return {
        time: Date.now(),
        started: deps.store.startedAt,
        processed: snap.processed,
        queued: snap.queued,
        deferred: snap.deferred,
        held: snap.held,
        domains: snap.domains,
      };
    });

    const messageQuery = { type: 'object', properties: { headers: { type: 'string', enum: ['yes', 'no'], description: 'yes: meta.headers holds the stored header block' } } } as const;
    app.get('/message/:id', { schema: { params: idParams, querystring: messageQuery, response: { 200: messageReply, ...errorReplies } } }, async (req) => {
      const id = checkedId(req.params);
      const meta = await deps.store.getMeta(id);
      if (!meta) throw HttpError.notFound(`No message ${id} in the queue`);
      const rows = await deps.store.getRows(id);
      const { headers, ...rest } = meta;
      const withHeaders = (req.query as { headers?: string }).headers === 'yes';
      return { meta: withHeaders ? { ...rest, headers } : rest, messages: rows.map(rowView) };
    });

    app.delete('/message/:id', { schema: { params: idParams, response: { 200: deletedReply, ...errorReplies } } }, async (req) => {
      const id = checkedId(req.params);
      const rows = await deps.store.deleteMessage(id);
      if (!rows) throw HttpError.notFound(`No message ${id} in the queue`);
      logEvent(deps.logger, 'DELETED', { id, by: 'api' });
      if (deps.hooks) await releaseDeleted(deps.hooks, rows);
      return { success: true, id };
    });
  };
}

function checkedId(params: unknown): string {
  const { id } = params as { id: string };
  if (!isQueueId(id)) throw HttpError.notFound(`No message ${JSON.stringify(id.slice(0, 64))} in the queue`);
  return id;
}
