/**
 * The suppression list over HTTP: Sluice's routes (/admin/suppression, what `sluice queue
 * suppress` calls) and ZoneMTA's (/suppressionlist, in its shapes). Both edit the one list in the
 * queue database (lib/queue/suppression.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { SuppressionKind } from '../queue/keys.js';
import { normalise, SuppressionFullError, type SuppressionEntry, type SuppressionList } from '../queue/suppression.js';
import { HttpError } from './errors.js';
import { suppressionAdd, suppressionEntry } from './admin-schemas.js';
import { errorReplies } from './response-schemas.js';

interface AddBody {
  address?: string;
  domain?: string;
  expires?: number;
  ttl?: number;
  reason?: string;
}

const zonemtaEntry = {
  type: 'object',
  properties: { id: { type: 'string' }, created: { type: 'string', format: 'date-time' }, address: { type: 'string' }, domain: { type: 'string' } },
  required: ['id'],
} as const;

/** ZoneMTA's shape of an entry: `address` or `domain`, `created` as a date. */
const zonemtaView = (e: SuppressionEntry) => ({ id: e.id, created: new Date(e.created).toISOString(), [e.kind]: e.value });

export function suppressionRoutes(deps: { list: SuppressionList; logger: Logger }) {
  const add = async (body: AddBody, by: string): Promise<SuppressionEntry> => {
    const given = [body.address, body.domain].filter((v) => v !== undefined);
    if (given.length !== 1) throw HttpError.badRequest('give one of address or domain');
    const kind: SuppressionKind = body.address !== undefined ? 'address' : 'domain';
    const value = normalise(kind, given[0]!);
    if (!value) throw HttpError.badRequest(`${kind}: ${JSON.stringify(given[0]!.slice(0, 64))} is not ${kind === 'address' ? 'an email address' : 'a domain name'}`);
    if (body.expires !== undefined && body.ttl !== undefined) throw HttpError.badRequest('give expires or ttl, not both');
    const expires = body.ttl !== undefined ? Date.now() + body.ttl * 1000 : body.expires;
    try {
      const entry = await deps.list.add(kind, value, { expires, reason: body.reason });
      deps.logger.info({ event: 'SUPPRESSION_ADDED', kind, value, expires, by }, `${value} added to the suppression list`);
      return entry;
    } catch (err) {
      if (err instanceof SuppressionFullError) throw new HttpError(507, 'InsufficientStorage', err.message);
      throw err;
    }
  };
  const remove = async (idOrValue: string, by: string): Promise<SuppressionEntry> => {
    const entry = await deps.list.remove(idOrValue);
    if (!entry) throw HttpError.notFound(`No suppression list entry ${JSON.stringify(idOrValue.slice(0, 64))}`);
    deps.logger.info({ event: 'SUPPRESSION_REMOVED', kind: entry.kind, value: entry.value, by }, `${entry.value} removed from the suppression list`);
    return entry;
  };

  return (app: FastifyInstance) => {
    app.get('/admin/suppression', { schema: { response: { 200: { type: 'object', properties: { entries: { type: 'array', items: suppressionEntry } }, required: ['entries'] }, ...errorReplies } } }, async () => ({
      entries: await deps.list.list(),
    }));
    app.post('/admin/suppression', { schema: { body: suppressionAdd, response: { 200: { type: 'object', properties: { entry: suppressionEntry }, required: ['entry'] }, ...errorReplies } } }, async (req) => ({
      entry: await add((req.body ?? {}) as AddBody, 'api'),
    }));
    app.delete(
      '/admin/suppression/:entry',
      { schema: { params: { type: 'object', properties: { entry: { type: 'string', maxLength: 320 } }, required: ['entry'] }, response: { 200: { type: 'object', properties: { deleted: suppressionEntry }, required: ['deleted'] }, ...errorReplies } } },
      async (req) => ({ deleted: await remove((req.params as { entry: string }).entry, 'api') }),
    );

    // ZoneMTA's routes and shapes
    app.get('/suppressionlist', { schema: { response: { 200: { type: 'object', properties: { suppressed: { type: 'array', items: zonemtaEntry } }, required: ['suppressed'] }, ...errorReplies } } }, async () => ({
      suppressed: (await deps.list.list()).map(zonemtaView),
    }));
    app.post(
      '/suppressionlist',
      { schema: { body: { type: 'object', properties: { address: { type: 'string', maxLength: 320 }, domain: { type: 'string', maxLength: 255 } } }, response: { 200: { type: 'object', properties: { suppressed: zonemtaEntry }, required: ['suppressed'] }, ...errorReplies } } },
      async (req) => {
        const { address, domain } = (req.body ?? {}) as { address?: string; domain?: string };
        const entry = await add({ address, domain }, 'api');
        return { suppressed: { id: entry.id, [entry.kind]: entry.value } };
      },
    );
    app.delete(
      '/suppressionlist',
      { schema: { body: { type: 'object', properties: { id: { type: 'string', maxLength: 320 } }, required: ['id'] }, response: { 200: { type: 'object', properties: { deleted: { type: 'string' } }, required: ['deleted'] }, ...errorReplies } } },
      async (req) => ({ deleted: (await remove((req.body as { id: string }).id, 'api')).id }),
    );
  };
}
