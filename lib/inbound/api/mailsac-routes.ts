/**
 * Mailsac's paths and shapes for the routes test suites call most, so that a suite written
 * against Mailsac runs against Sluice by changing its base URL to http://HOST:PORT/api (the
 * official @mailsac/api client included). The shapes follow Mailsac's published OpenAPI document
 * (research/mailsac-api.md); Sluice's own routes (routes.ts) carry more.
 *
 * A Mailsac-Key header is taken as the API token where one is configured (see api/server.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { Inbox } from '../inbox.js';
import { sendBytes, sendHtml, sendText } from './bodies.js';
import type { InboxAccess } from './access.js';
import { notFound, pageSize } from './routes.js';
import { mailsacView } from './views.js';

export interface MailsacDeps {
  inbox: Inbox;
  access: InboxAccess;
  /** Mailsac's `via`: the receiving server */
  hostname: string;
  /** an inbox holds at most this many: the default and the most a listing gives */
  maxPerInbox: number;
}

const email = { type: 'string', maxLength: 400 } as const;
const messageId = { type: 'string', maxLength: 64 } as const;
const emailParams = { type: 'object', properties: { email }, required: ['email'] } as const;
const messageParams = { type: 'object', properties: { email, messageId }, required: ['email', 'messageId'] } as const;

export function mailsacRoutes(deps: MailsacDeps) {
  const { inbox, access } = deps;

  /** The message under the inbox it belongs to, or 404 (also for another inbox's, or a private one's without its key). */
  const find = async (req: FastifyRequest, address: string, id: string) => {
    const { inbox: name, readable } = access.inbox(req, address);
    const entry = readable ? await inbox.entry(name, id) : undefined;
    const msg = entry ? await inbox.message(id) : undefined;
    if (!entry || !msg) throw notFound(id);
    return { name, entry, msg };
  };

  return (app: FastifyInstance) => {
    app.get('/api/addresses/:email/messages', {
      schema: { params: emailParams, querystring: { type: 'object', properties: { limit: { type: 'string', pattern: '^[0-9]{1,6}$' }, until: { type: 'string', maxLength: 64 } } } },
    }, async (req) => {
      const { email: address } = req.params as { email: string };
      const query = req.query as { limit?: string; until?: string };
      const limit = pageSize(query.limit, deps.maxPerInbox, deps.maxPerInbox);
      const until = query.until === undefined ? undefined : Date.parse(query.until);
      if (until !== undefined && !Number.isFinite(until)) throw HttpError.badRequest('until: expected a date like 2026-12-01T10:00:00Z');
      const { inbox: name, tag, readable } = access.inbox(req, address);
      const { items } = readable ? await inbox.list(name, { limit: until === undefined ? limit : deps.maxPerInbox, tag: tag || undefined }) : { items: [] };
      return items
        .filter((i) => until === undefined || i.envelope.receivedAt <= until)
        .slice(0, limit)
        .map((i) => mailsacView(name, i.envelope, i.entry, i.summary, deps.hostname));
    });

    app.get('/api/addresses/:email/message-count', { schema: { params: emailParams } }, async (req) => {
      const { email: address } = req.params as { email: string };
      const { inbox: name, tag, readable } = access.inbox(req, address);
      return { count: readable ? await inbox.count(name, tag || undefined) : 0, inbox: name };
    });

    app.delete('/api/addresses/:email/messages', { schema: { params: emailParams } }, async (req, reply) => {
      const { email: address } = req.params as { email: string };
      const { inbox: name, tag, readable } = access.inbox(req, address);
      if (readable) await inbox.empty(name, tag || undefined);
      return reply.status(204).send();
    });

    app.get('/api/addresses/:email/messages/:messageId', { schema: { params: messageParams } }, async (req) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { name, entry, msg } = await find(req, address, id);
      return mailsacView(name, msg.envelope, entry, msg.parsed, deps.hostname);
    });

    app.delete('/api/addresses/:email/messages/:messageId', { schema: { params: messageParams } }, async (req) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { inbox: name, readable } = access.inbox(req, address);
      if (!readable || !(await inbox.removeFrom(name, id))) throw notFound(id);
      return { _id: id, inbox: name, message: 'Message was deleted.' };
    });

    app.get('/api/addresses/:email/messages/:messageId/headers', {
      schema: { params: messageParams, querystring: { type: 'object', properties: { messageHeadersFormat: { type: 'string', enum: ['json', 'json-ordered', 'plain'] } } } },
    }, async (req, reply) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { messageHeadersFormat: format = 'json' } = req.query as { messageHeadersFormat?: string };
      const headers = (await find(req, address, id)).msg.parsed?.headers ?? [];
      if (format === 'plain') return sendText(reply, headers.map((h) => `${h.name}: ${h.value}\n`).join(''));
      if (format === 'json-ordered') return headers.map((h) => ({ name: h.name.toLowerCase(), value: h.value }));
      const grouped: Record<string, string[]> = {};
      for (const h of headers) (grouped[h.name.toLowerCase()] ??= []).push(h.value);
      return grouped;
    });

    app.get('/api/addresses/:email/messages/:messageId/attachments', { schema: { params: messageParams } }, async (req) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { msg } = await find(req, address, id);
      return (msg.parsed?.attachments ?? []).map((a) => ({
        checksum: a.md5,
        contentDisposition: a.disposition,
        contentId: a.contentId,
        contentType: a.contentType,
        fileName: a.filename,
        length: a.size,
      }));
    });

    app.get('/api/addresses/:email/messages/:messageId/attachments/:attachmentIdentifier', {
      schema: { params: { type: 'object', properties: { email, messageId, attachmentIdentifier: { type: 'string', maxLength: 255 } }, required: ['email', 'messageId', 'attachmentIdentifier'] } },
    }, async (req, reply) => {
      const { email: address, messageId: id, attachmentIdentifier: which } = req.params as { email: string; messageId: string; attachmentIdentifier: string };
      const { msg } = await find(req, address, id);
      // Mailsac names an attachment by its MD5 or its file name
      const info = (msg.parsed?.attachments ?? []).find((a) => a.md5 === which.toLowerCase() || a.filename === which);
      const found = info ? await inbox.attachment(id, info.index) : undefined;
      if (!found) throw HttpError.notFound(`Message ${id} has no attachment ${JSON.stringify(which.slice(0, 100))}`);
      return sendBytes(reply, found.chunks, { type: found.info.contentType, size: found.info.size, filename: found.info.filename ?? 'attachment', download: true });
    });

    app.put('/api/addresses/:email/messages/:messageId/read/:readBoolean', {
      schema: { params: { type: 'object', properties: { email, messageId, readBoolean: { type: 'string', enum: ['true', 'false'] } }, required: ['email', 'messageId', 'readBoolean'] } },
    }, async (req) => {
      const { email: address, messageId: id, readBoolean } = req.params as { email: string; messageId: string; readBoolean: string };
      const { inbox: name, readable } = access.inbox(req, address);
      const read = readBoolean === 'true';
      if (!readable || !(await inbox.setRead(name, id, read))) throw notFound(id);
      return { _id: id, read };
    });

    app.get('/api/raw/:email/:messageId', {
      schema: { params: messageParams, querystring: { type: 'object', properties: { download: { type: 'string', maxLength: 8 } } } },
    }, async (req, reply) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { download } = req.query as { download?: string };
      await find(req, address, id);
      const raw = await inbox.raw(id);
      if (!raw) throw notFound(id);
      return sendBytes(reply, raw.chunks, { type: 'text/plain; charset=utf-8', size: raw.size, filename: `${id}.eml`, download: download === '1' || download === 'true' });
    });

    app.get('/api/text/:email/:messageId', { schema: { params: messageParams } }, async (req, reply) => {
      const { email: address, messageId: id } = req.params as { email: string; messageId: string };
      const { msg } = await find(req, address, id);
      if (msg.parsed?.text == null) throw HttpError.notFound(`Message ${id} has no text`);
      return sendText(reply, msg.parsed.text);
    });

    for (const [path, sanitized] of [['/api/dirty/:email/:messageId', false], ['/api/body/:email/:messageId', true]] as const) {
      app.get(path, { schema: { params: messageParams } }, async (req, reply) => {
        const { email: address, messageId: id } = req.params as { email: string; messageId: string };
        const { msg } = await find(req, address, id);
        if (msg.parsed?.html == null) throw HttpError.notFound(`Message ${id} has no HTML`);
        return sendHtml(reply, msg.parsed.html, sanitized);
      });
    }
  };
}
