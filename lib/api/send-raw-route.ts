/**
 * POST /send-raw: a whole RFC 822 message as the request body (Content-Type: message/rfc822),
 * as ZoneMTA takes it. The envelope comes from the message's headers (raw-message.ts) unless the
 * query gives it (`?from=a@b.test&to=c@d.test,e@f.test`); Bcc lines are removed. The body streams
 * into the same ingest() as SMTP and POST /send, never held whole, checked by the same rules:
 * smtp.maxSize (413), queue.maxHeaderSize, the api:mail hook, api.maxRecipients.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Ingest } from '../accept/ingest.js';
import type { Config } from '../config/schema.js';
import type { HookEnvelope } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import { HttpError } from './errors.js';
import { readRawMessage } from './raw-message.js';
import { checkEnvelope, originOf, replyShapeOf, sendReply } from './send-envelope.js';
import { errorReplies, sendReplySchema } from './response-schemas.js';

const querystring = {
  type: 'object',
  additionalProperties: false,
  properties: {
    from: { type: 'string', maxLength: 998, description: 'envelope sender (default: the From address)' },
    to: { type: 'string', maxLength: 100_000, description: 'envelope recipients, comma separated (default: To, Cc and Bcc)' },
  },
} as const;

export function sendRawRoute(deps: { config: Config; ingest: Ingest; hooks: HookRunner }) {
  const { config } = deps;
  return (app: FastifyInstance) => {
    // the body is handed over as the request stream: ingest reads it chunk by chunk
    app.addContentTypeParser('message/rfc822', (_req, payload, done) => done(null, payload));
    app.post('/send-raw', { schema: { querystring, response: { 200: sendReplySchema, ...errorReplies } } }, async (req, reply) => {
      const shape = replyShapeOf(req, config);
      const query = req.query as { from?: string; to?: string };
      const origin = originOf(req);
      const stream = req.body as Readable | undefined;
      if (!stream || typeof stream.pipe !== 'function') throw HttpError.badRequest('the body must be the message itself (Content-Type: message/rfc822)');
      const raw = await readRawMessage(stream, config.queue.maxHeaderSize);

      const to = query.to !== undefined ? query.to.split(',').map((a) => a.trim()).filter(Boolean) : raw.to;
      const envelope: HookEnvelope = { id: '', from: query.from ?? raw.from, to: [...new Set(to)], origin };
      try {
        checkEnvelope(envelope.from, envelope.to, config.api.maxRecipients);
        await deps.hooks.run('api:mail', envelope, { raw: true });
        checkEnvelope(envelope.from, envelope.to, config.api.maxRecipients);
      } catch (err) {
        await raw.discard();
        throw err;
      }

      const result = await deps.ingest.ingest({
        from: envelope.from,
        to: [...new Set(envelope.to)],
        origin,
        source: raw.source,
        maxSizeBytes: config.smtp.maxSize,
      });
      return reply.send(sendReply(result, envelope.from, shape));
    });
  };
}
