/**
 * POST /send: nodemailer's message JSON, built into RFC 5322 by nodemailer's MailComposer and
 * streamed into the same ingest() as SMTP.
 *
 *   recipients counted (recipient-count.ts) → JSON schema (fastify/ajv, unknown fields
 *   refused) → send-checks (no path/href, no line
 *   breaks in addresses, safe custom headers) → compose (envelope) → envelope checks →
 *   api:mail hook → envelope checks again (a hook may change it) → ingest → { id, messageId,
 *   recipients }
 *
 * Every refusal is a 400 naming the field; size over smtp.maxSize is a 413 from ingest.
 */
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config/schema.js';
import { checkAddress } from '../accept/address.js';
import type { Ingest } from '../accept/ingest.js';
import type { HookEnvelope } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { Origin } from '../queue/types.js';
import { ComposedSource, compose } from './compose.js';
import { HttpError } from './errors.js';
import type { JsonRouteConfig } from './json-body.js';
import { recipientProblem } from './recipient-count.js';
import { dsnRequest } from './send-dsn.js';
import { checkSendMessage } from './send-checks.js';
import { sendBodySchema } from './send-schema.js';
import { errorReplies, sendReply } from './response-schemas.js';

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
    app.post('/send', { schema: { body: sendBodySchema, response: { 200: sendReply, ...errorReplies } }, config, preValidation }, async (req, reply) => {
      const message = req.body as Json;
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
      return reply.send({
        id: result.id,
        messageId: result.messageId,
        recipients: result.recipients.map((r) => ({ recipient: r.recipient, seq: r.seq, zone: r.zone })),
      });
    });
  };
}

function checkEnvelope(from: unknown, to: unknown, maxRecipients: number): asserts to is string[] {
  if (typeof from !== 'string' || !from) {
    throw HttpError.badRequest('from: a sender address is required (from, sender, replyTo or envelope.from)');
  }
  if (!Array.isArray(to) || to.some((r) => typeof r !== 'string')) throw HttpError.badRequest('to: recipients must be addresses');
  if (!to.length) throw HttpError.badRequest('to: at least one recipient is required (to, cc, bcc or envelope.to)');
  if (to.length > maxRecipients) {
    throw HttpError.badRequest(`to: too many recipients (${to.length}); at most ${maxRecipients} per message`);
  }
  check(from, 'from');
  for (const rcpt of to as string[]) check(rcpt, 'to');
}

function check(address: string, field: string): void {
  try {
    checkAddress(address, false);
  } catch (err) {
    throw HttpError.badRequest(`${field}: ${(err as Error).message}`);
  }
}

/** Who sent it: the socket, and what a trusted front end says in X-Authenticated-User / X-Originating-IP. */
function originOf(req: FastifyRequest): Origin {
  const user = headerValue(req.headers['x-authenticated-user']);
  const originatingIp = headerValue(req.headers['x-originating-ip'])?.replace(/^\[(.*)\]$/, '$1');
  if (originatingIp !== undefined && !isIP(originatingIp)) {
    throw HttpError.badRequest('X-Originating-IP: expected an IPv4 or IPv6 address');
  }
  return { via: 'api', remoteAddress: req.ip, user, originatingIp, transmissionType: 'HTTP' };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const clean = v?.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 255);
  return clean || undefined;
}
