/**
 * The inbox API under /api: list an inbox (newest first, cursor pages), the latest message, one
 * message, its raw source, text, HTML (as sent or sanitised), headers and attachments; delete one
 * message or empty an inbox.
 *
 * An inbox nobody wrote to is an empty list (200), never a 404: test suites ask before the mail
 * arrives. A message asked for under an inbox it is not in is 404, as is one past its TTL or
 * its inbox's cap. An address that is not an address is 400.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { Inbox } from '../inbox.js';
import type { InboxAccess } from './access.js';
import { isInboxId } from '../store/ids.js';
import { sendBytes, sendHtml, sendText } from './bodies.js';
import { listedView, messageView } from './views.js';

export interface InboxApiDeps {
  inbox: Inbox;
  access: InboxAccess;
  /** the most messages one page lists */
  maxPageSize: number;
}

const DEFAULT_PAGE = 50;

const addressParams = { type: 'object', properties: { address: { type: 'string', maxLength: 400 } }, required: ['address'] } as const;
const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;
const addressIdParams = { type: 'object', properties: { address: { type: 'string', maxLength: 400 }, id: { type: 'string', maxLength: 64 } }, required: ['address', 'id'] } as const;

/** A page size from a query string: 1 to `max`, `fallback` when not given. */
export function pageSize(value: string | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) throw HttpError.badRequest(`limit: expected a whole number from 1 to ${max}`);
  return n;
}

export const notFound = (id: string) => HttpError.notFound(`No message ${JSON.stringify(id.slice(0, 64))}`);

export function inboxRoutes(deps: InboxApiDeps) {
  const { inbox, access } = deps;

  /** A message by id that this request may read, or 404. */
  const byId = async (req: FastifyRequest, id: string) => {
    const msg = isInboxId(id) ? await inbox.message(id) : undefined;
    if (!msg || !access.message(req, msg.envelope)) throw notFound(id);
    return msg;
  };

  /** A message under an inbox it is in and this request may read, or 404. */
  const inInbox = async (req: FastifyRequest, address: string, id: string) => {
    const { inbox: name, readable } = access.inbox(req, address);
    const entry = readable ? await inbox.entry(name, id) : undefined;
    const msg = entry ? await inbox.message(id) : undefined;
    if (!entry || !msg) throw notFound(id);
    return { msg, from: { inbox: name, entry } };
  };

  return (app: FastifyInstance) => {
    app.get('/api/inboxes/:address/messages', {
      schema: {
        params: addressParams,
        querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,6}$' }, cursor: { type: 'string', maxLength: 64 } }, additionalProperties: false },
      },
    }, async (req) => {
      const { address } = req.params as { address: string };
      const query = req.query as { limit?: string; cursor?: string };
      const limit = pageSize(query.limit, Math.min(DEFAULT_PAGE, deps.maxPageSize), deps.maxPageSize);
      const { cursor } = query;
      if (cursor !== undefined && !isInboxId(cursor)) throw HttpError.badRequest('cursor: not a cursor this API gave out');
      const { inbox: name, tag, readable } = access.inbox(req, address);
      const page = readable ? await inbox.list(name, { limit, before: cursor, tag: tag || undefined }) : { items: [], more: false };
      const messages = page.items.map((item) => listedView(name, item));
      return { inbox: name, ...(tag ? { tag } : {}), messages, nextCursor: page.more ? messages[messages.length - 1]!.id : null };
    });

    app.get('/api/inboxes/:address/messages/latest', { schema: { params: addressParams } }, async (req) => {
      const { address } = req.params as { address: string };
      const { inbox: name, tag, readable } = access.inbox(req, address);
      const [item] = readable ? (await inbox.list(name, { limit: 1, tag: tag || undefined })).items : [];
      const msg = item ? await inbox.message(item.envelope.id) : undefined;
      if (!item || !msg) throw HttpError.notFound(`The inbox ${name} is empty`);
      return messageView(msg, { inbox: name, entry: item.entry });
    });

    app.get('/api/inboxes/:address/messages/:id', { schema: { params: addressIdParams } }, async (req) => {
      const { address, id } = req.params as { address: string; id: string };
      const { msg, from } = await inInbox(req, address, id);
      return messageView(msg, from);
    });

    app.delete('/api/inboxes/:address/messages/:id', { schema: { params: addressIdParams } }, async (req, reply) => {
      const { address, id } = req.params as { address: string; id: string };
      const { inbox: name, readable } = access.inbox(req, address);
      if (!readable || !(await inbox.removeFrom(name, id))) throw notFound(id);
      return reply.status(204).send();
    });

    app.delete('/api/inboxes/:address/messages', { schema: { params: addressParams } }, async (req) => {
      const { address } = req.params as { address: string };
      const { inbox: name, tag, readable } = access.inbox(req, address);
      return { deleted: readable ? await inbox.empty(name, tag || undefined) : 0 };
    });

    app.get('/api/messages/:id', { schema: { params: idParams } }, async (req) => messageView(await byId(req, (req.params as { id: string }).id)));

    app.delete('/api/messages/:id', { schema: { params: idParams } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await byId(req, id);
      if (!(await inbox.remove(id))) throw notFound(id);
      return reply.status(204).send();
    });

    app.get('/api/messages/:id/raw', { schema: { params: idParams } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      await byId(req, id);
      const raw = await inbox.raw(id);
      if (!raw) throw notFound(id);
      return sendBytes(reply, raw.chunks, { type: 'message/rfc822', size: raw.size, filename: `${id}.eml`, download: true });
    });

    app.get('/api/messages/:id/text', { schema: { params: idParams } }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { parsed } = await byId(req, id);
      if (parsed?.text == null) throw HttpError.notFound(`Message ${id} has no text part`);
      return sendText(reply, parsed.text);
    });

    app.get('/api/messages/:id/html', {
      schema: { params: idParams, querystring: { type: 'object', properties: { sanitized: { type: 'string', enum: ['1', 'true', '0', 'false'] } }, additionalProperties: false } },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { sanitized } = req.query as { sanitized?: string };
      return html(req, reply, id, sanitized === '1' || sanitized === 'true');
    });

    app.get('/api/messages/:id/headers', { schema: { params: idParams } }, async (req) => {
      const { parsed } = await byId(req, (req.params as { id: string }).id);
      return parsed?.headers ?? [];
    });

    app.get('/api/messages/:id/attachments/:n', {
      schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 }, n: { type: 'string', pattern: '^[0-9]{1,4}$' } }, required: ['id', 'n'] } },
    }, async (req, reply) => {
      const { id } = req.params as { id: string; n: string };
      const n = Number((req.params as { n: string }).n);
      await byId(req, id);
      const found = await inbox.attachment(id, n);
      if (!found) throw HttpError.notFound(`Message ${id.slice(0, 64)} has no attachment ${n}`);
      const { info, chunks } = found;
      return sendBytes(reply, chunks, { type: info.contentType, size: info.size, filename: info.filename ?? `attachment-${n}`, download: true });
    });
  };

  async function html(req: FastifyRequest, reply: FastifyReply, id: string, sanitized: boolean) {
    const { parsed } = await byId(req, id);
    if (parsed?.html == null) throw HttpError.notFound(`Message ${id} has no HTML part`);
    return sendHtml(reply, parsed.html, sanitized);
  }
}
