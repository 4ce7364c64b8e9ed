/**
 * Queue administration over HTTP (what `sluice queue …` calls): list rows with filters, one page
 * at a time; the queue's shape (qshape); and flush, delete, hold and release for the rows a
 * filter selects. A bulk action answers with its result, or, asked for NDJSON, streams a
 * progress line after every window of messages and the result last.
 */
import { PassThrough } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { QueueAction, QueueAdmin } from '../queue/admin.js';
import { isQueueId } from '../queue/ids.js';
import { cursorOf, parseCursor, selectRows, type RowFilter } from '../queue/select.js';
import type { QueueStore } from '../queue/store.js';
import { queueShape } from '../queue/summary.js';
import type { DeliveryRow, MessageMeta } from '../queue/types.js';
import { HttpError } from './errors.js';
import { actionBody, actionReply, listQuery, listReply, summaryQuery, summaryReply, type FilterFields } from './admin-schemas.js';
import { errorReplies } from './response-schemas.js';

/** Rows one page may read, matching or not: a rare filter answers with a cursor instead of reading the whole queue. */
export const MAX_SCAN_PER_PAGE = 50_000;

const intOf = (s: string | undefined): number | undefined => (s === undefined ? undefined : Number(s));

/**
 * The RowFilter of a request's filter fields (admin-schemas.ts, which validated them): the fields
 * given, under their names, the ages turned from seconds into ms and the domain into lower case.
 * `q` holds filter fields only (the caller takes its other options out first).
 */
export function filterOf(q: FilterFields): RowFilter {
  if (q.id !== undefined && !isQueueId(q.id)) throw HttpError.badRequest(`id: ${JSON.stringify(q.id.slice(0, 64))} is not a queue id`);
  if (q.seq !== undefined && q.id === undefined) throw HttpError.badRequest('seq: give the message id with it');
  const { minAge, maxAge, ...same } = q;
  const filter: RowFilter = Object.fromEntries(Object.entries(same).filter(([, v]) => v !== undefined));
  if (filter.domain !== undefined) filter.domain = filter.domain.toLowerCase();
  if (minAge !== undefined) filter.minAgeMs = minAge * 1000;
  if (maxAge !== undefined) filter.maxAgeMs = maxAge * 1000;
  return filter;
}

/** A row as a listing shows it. */
export function listedRow(row: DeliveryRow, meta: MessageMeta | undefined) {
  return {
    id: row.id,
    seq: row.seq,
    cursor: cursorOf(row),
    zone: row.zone,
    recipient: row.recipient,
    domain: row.domain,
    from: meta?.from ?? null,
    subject: meta?.subject ?? null,
    size: meta?.size ?? null,
    status: row.status,
    created: row.created,
    due: row.due,
    attempts: row.attempts,
    ...(row.heldAt !== undefined ? { heldAt: row.heldAt } : {}),
    lastAttempt: row.lastAttempt ?? null,
    lastResponse: row.lastResponse ?? null,
    category: row.category ?? null,
  };
}

export function adminRoutes(deps: { store: QueueStore; admin: QueueAdmin }) {
  return (app: FastifyInstance) => {
    app.get('/admin/rows', { schema: { querystring: listQuery, response: { 200: listReply, ...errorReplies } } }, async (req) => {
      const { order, limit: rawLimit, cursor, ...raw } = req.query as Record<string, string | undefined>;
      const fields = { ...raw, seq: intOf(raw.seq), minAge: intOf(raw.minAge), maxAge: intOf(raw.maxAge) } as FilterFields;
      const pageSize = intOf(rawLimit);
      if (pageSize !== undefined && (pageSize < 1 || pageSize > 1000)) throw HttpError.badRequest('limit: from 1 to 1000');
      const filter = filterOf(fields);
      const after = cursor === undefined ? undefined : parseCursor(cursor);
      if (cursor !== undefined && !after) throw HttpError.badRequest('cursor: not a cursor this API gave (ID.SEQ)');
      const limit = pageSize ?? 100;
      let scanned = 0;
      let last: DeliveryRow | undefined;
      const rows: ReturnType<typeof listedRow>[] = [];
      let more = false;
      const walk = selectRows(deps.store, filter, {
        nowMs: Date.now(),
        newestFirst: order === 'newest',
        after,
        withMeta: true,
        maxRead: MAX_SCAN_PER_PAGE,
        onRead: (row) => {
          last = row;
          scanned++;
        },
      });
      for await (const { row, meta } of walk) {
        rows.push(listedRow(row, meta));
        if (rows.length >= limit) {
          more = true;
          break;
        }
      }
      // a page that read its bound goes on after the last row it read, matching or not
      if (scanned >= MAX_SCAN_PER_PAGE) more = true;
      await walk.return(undefined);
      return { rows, next: more && last ? cursorOf(last) : null, scanned };
    });

    app.get('/admin/summary', { schema: { querystring: summaryQuery, response: { 200: summaryReply, ...errorReplies } } }, async (req) => {
      const q = req.query as { zone?: string; status?: 'pending' | 'held' | 'all'; top?: string };
      const top = intOf(q.top) ?? 50;
      if (top < 1 || top > 10_000) throw HttpError.badRequest('top: from 1 to 10000');
      return queueShape(deps.store, { nowMs: Date.now(), zone: q.zone, status: q.status, top });
    });

    for (const action of ['flush', 'delete', 'hold', 'release'] as const) {
      app.post(`/admin/${action}`, { schema: { body: actionBody, response: { 200: actionReply, ...errorReplies } } }, (req, reply) => runAction(deps.admin, action, req, reply));
    }
  };
}

async function runAction(admin: QueueAdmin, action: QueueAction, req: FastifyRequest, reply: FastifyReply) {
  const body = (req.body ?? {}) as FilterFields & { all?: boolean; dryRun?: boolean };
  const { all, dryRun, ...fields } = body;
  const filter = filterOf(fields);
  if (!Object.keys(filter).length && all !== true) {
    throw HttpError.badRequest(`name the rows to ${action} (id, zone, domain, sender, status, age, category), or give "all": true`);
  }
  const by = 'api';
  // the reply may be longer coming than api.idleTimeout on a deep queue: the socket waits for it
  // (a token guards these routes beyond loopback); the NDJSON form keeps writing meanwhile
  req.raw.socket.setTimeout(0);
  if (!/application\/x-ndjson/.test(req.headers.accept ?? '')) return admin.run(action, filter, { dryRun, by });
  // progress as it goes, one JSON object a line; the result last
  const out = new PassThrough();
  const stop = new AbortController();
  req.raw.on('close', () => stop.abort());
  void admin
    .run(action, filter, { dryRun, by, signal: stop.signal, onProgress: (p) => out.write(JSON.stringify({ progress: p }) + '\n') })
    .then(
      (result) => out.end(JSON.stringify({ result }) + '\n'),
      (err: Error) => {
        req.log.error({ err }, `queue ${action} failed`);
        out.end(JSON.stringify(HttpError.body('InternalError', `the ${action} stopped: ${err.message}`)) + '\n');
      },
    );
  return reply.type('application/x-ndjson').send(out);
}
