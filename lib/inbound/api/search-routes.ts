/**
 * Search over every inbox the caller may read (search/query.ts has the language):
 *
 *   GET    /api/search?q=…&limit=&cursor=   newest first: `{ query, messages, nextCursor }`
 *   DELETE /api/messages?q=…                deletes what matches: `{ deleted, more }`
 *
 * A query with `to:` and one whole address reads that inbox alone; any other reads the store
 * newest first within the dates it gives, MAX_SCAN messages per call at most, so one request
 * never holds the event loop for long: a page may come back short with a `nextCursor` to go on.
 * Private inboxes are searched only with their key (X-Inbox-Key), like every read.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { Inbox } from '../inbox.js';
import type { RecipientPolicy } from '../recipients.js';
import { parseQuery, QueryError, type Query } from '../search/query.js';
import { isInboxId } from '../store/ids.js';
import type { InboundEnvelope, MessageSummary } from '../store/types.js';
import type { InboxAccess } from './access.js';
import { pageSize } from './routes.js';

/** Messages read per request at most, whatever they match. */
export const MAX_SCAN = 20_000;
/** Messages one DELETE removes at most (call again while `more`). */
const MAX_DELETE = 10_000;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

export interface SearchDeps {
  inbox: Inbox;
  policy: RecipientPolicy;
  access: InboxAccess;
}

const queryString = { type: 'object', properties: { q: { type: 'string', minLength: 1, maxLength: 1000 }, limit: { type: 'string', pattern: '^[0-9]{1,6}$' }, cursor: { type: 'string', maxLength: 64 } }, required: ['q'], additionalProperties: false } as const;

export function searchRoutes(deps: SearchDeps) {
  const { inbox, policy, access } = deps;

  const parse = (q: string): Query => {
    try {
      return parseQuery(q);
    } catch (err) {
      if (err instanceof QueryError) throw HttpError.badRequest(`q: ${err.message}`);
      throw err;
    }
  };

  const run = (req: FastifyRequest, q: Query, limit: number, before?: string) => {
    const key = access.key(req);
    return inbox.search(q, {
      limit,
      before,
      inbox: q.inbox ? policy.lookup(q.inbox)?.inbox : undefined,
      maxScan: MAX_SCAN,
      readable: (envelope) => envelope.inboxes.some((i) => access.allows(i, key)),
    });
  };

  return (app: FastifyInstance) => {
    app.get('/api/search', { schema: { querystring: queryString } }, async (req) => {
      const { q, limit, cursor } = req.query as { q: string; limit?: string; cursor?: string };
      if (cursor !== undefined && !isInboxId(cursor)) throw HttpError.badRequest('cursor: not a cursor this API gave out');
      const query = parse(q);
      const page = await run(req, query, pageSize(limit, DEFAULT_PAGE, MAX_PAGE), cursor);
      const key = access.key(req);
      return { query: q, messages: page.items.map((m) => hitView(m, (i) => access.allows(i, key))), nextCursor: page.next };
    });

    app.delete('/api/messages', { schema: { querystring: { ...queryString, properties: { q: queryString.properties.q } } } }, async (req) => {
      const query = parse((req.query as { q: string }).q);
      let deleted = 0;
      let before: string | undefined;
      for (;;) {
        const page = await run(req, query, Math.min(1000, MAX_DELETE - deleted), before);
        for (const { envelope } of page.items) if (await inbox.remove(envelope.id)) deleted++;
        if (!page.next) return { deleted, more: false };
        if (deleted >= MAX_DELETE) return { deleted, more: true };
        before = page.next;
      }
    });
  };
}

/** A search hit: the message as a listing shows it, with the inboxes the caller may read. */
function hitView(m: { envelope: InboundEnvelope; summary: MessageSummary | null }, readable: (inbox: string) => boolean) {
  const { envelope, summary } = m;
  const inboxes = envelope.inboxes.filter(readable);
  return {
    id: envelope.id,
    inboxes,
    from: summary?.from ?? null,
    to: summary?.to ?? [],
    cc: summary?.cc ?? [],
    subject: summary?.subject ?? '',
    date: summary?.date ?? null,
    receivedAt: new Date(envelope.receivedAt).toISOString(),
    size: envelope.size,
    spam: summary?.spam ?? null,
    links: summary?.links ?? [],
    codes: summary?.codes ?? [],
    attachments: summary?.attachments ?? [],
    envelope: { from: envelope.from, to: envelope.rcpts.filter((r) => inboxes.includes(r.inbox)).map((r) => r.address) },
  };
}
