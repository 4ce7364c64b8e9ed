/**
 * POST /send: nodemailer's message JSON, built into RFC 5322 by nodemailer's MailComposer and
 * streamed into the same ingest() as SMTP.
 *
 *   recipients counted (recipient-count.ts) → JSON schema (fastify/ajv, unknown fields
 *   refused) → send-checks (no path/href, no line
 *   breaks in addresses, safe custom headers) → compose (envelope) → envelope checks →
 *   api:mail hook → envelope checks again (a hook may change it) → ingest → { id, messageId,
 *   recipients } (or ZoneMTA's reply, send-envelope.ts)
 *
 * Every refusal is a 400 naming the field; size over smtp.maxSize is a 413 from ingest.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import type { Ingest } from '../accept/ingest.js';
import type { HookEnvelope } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import { ComposedSource, compose } from './compose.js';
import { HttpError } from './errors.js';
import type { JsonRouteConfig } from './json-body.js';
import { recipientProblem } from './recipient-count.js';
import { dsnRequest } from './send-dsn.js';
import { checkSendMessage } from './send-checks.js';
import { checkEnvelope, originOf, replyShapeOf, sendReply } from './send-envelope.js';
import { sendBodySchema } from './send-schema.js';
import { errorReplies, sendReplySchema } from './response-schemas.js';

type Json = Record<string, unknown>;

export function sendRoute(deps: { config: Config; ingest: Ingest; hooks: HookRunner }) {
  const maxRecipients = deps.config.api.maxRecipients;
  return (app: FastifyInstance) => {
    const config: JsonRouteConfig = { recipientCap: maxRecipients };
    // counted before the schema and the address checks parse every address (a large body was
    // counted in the JSON worker already)
    const preValidation = async (req: FastifyRequest) => {
      const problem = recipientProblem(req.body, maxRecipients);
      if (problem) throw HttpError.badRequest(problem);
    };
    app.post('/send', { schema: { body: sendBodySchema, response: { 200: sendReplySchema, ...errorReplies } }, config, preValidation }, async (req, reply) => {
      const message = req.body as Json;
      const shape = replyShapeOf(req, deps.config);
      checkSendMessage(message);
      const origin = originOf(req);
      const { mail, from, to } = compose(message);
      checkEnvelope(from, to, maxRecipients);

      const envelope: HookEnvelope = { id: '', from, to, origin };
      await deps.hooks.run('api:mail', envelope, message);
      checkEnvelope(envelope.from, envelope.to, maxRecipients);

      const recipients = [...new Set(envelope.to)];
      const dsn = dsnRequest(message.dsn, recipients);
      const source = new ComposedSource(mail.createReadStream());
      let result;
      try {
        result = await deps.ingest.ingest({
          from: envelope.from,
          to: recipients,
          origin,
          source,
          maxSizeBytes: deps.config.smtp.maxSize,
          ...(dsn ? { dsn } : {}),
        });
      } catch (err) {
        throw source.failure ?? err;
      }
      return reply.send(sendReply(result, envelope.from, shape));
    });
  };
}
