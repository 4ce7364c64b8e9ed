/**
 * POST /send: nodemailer's message JSON, built into RFC 5322 by nodemailer's MailComposer and
 * streamed into the same ingest() as SMTP.
 *
 * Safety: content may only come inline. `path` and `href` anywhere (attachments, alternatives,
 * text, html, amp, icalEvent, raw) are refused with 400, and the composer runs with file and URL
 * access disabled as a second wall. Address fields must be single-line, so a CR/LF can never add
 * a recipient or a header; nodemailer folds CR/LF inside other header values.
 */
import type { FastifyInstance } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { Config } from '../config/schema.js';
import { checkAddress } from '../accept/address.js';
import type { Ingest } from '../accept/ingest.js';
import type { HookRunner } from '../plugins/runner.js';
import { HttpError } from './errors.js';
import { sendBodySchema } from './send-schema.js';

/** Fields whose value may be a content object with path/href. */
const CONTENT_FIELDS = ['text', 'html', 'amp', 'watchHtml', 'icalEvent', 'raw'] as const;
const LIST_FIELDS = ['attachments', 'alternatives'] as const;
const ADDRESS_FIELDS = ['from', 'sender', 'replyTo', 'to', 'cc', 'bcc'] as const;

type Json = Record<string, unknown>;

export function sendRoute(deps: { config: Config; ingest: Ingest; hooks: HookRunner }) {
  return (app: FastifyInstance) => {
    app.post('/send', { schema: { body: sendBodySchema } }, async (req, reply) => {
      const message = req.body as Json;
      refuseExternalContent(message);
      refuseMultilineAddresses(message);

      const composer = new MailComposer({ ...message, disableFileAccess: true, disableUrlAccess: true } as ConstructorParameters<typeof MailComposer>[0]);
      const mail = composer.compile();
      const envelope = mail.getEnvelope();
      const from = envelope.from || '';
      const to = [...new Set(envelope.to)];
      if (!to.length) throw HttpError.badRequest('to: at least one recipient is required (to, cc, bcc or envelope.to)');
      if (to.length > deps.config.api.maxRecipients) {
        throw HttpError.badRequest(`to: too many recipients (${to.length}); at most ${deps.config.api.maxRecipients} per message`);
      }
      for (const address of [from, ...to]) {
        try {
          checkAddress(address, address === from);
        } catch (err) {
          throw HttpError.badRequest((err as Error).message);
        }
      }

      const user = headerValue(req.headers['x-authenticated-user']);
      const originatingIp = headerValue(req.headers['x-originating-ip']);
      const origin = { via: 'api' as const, remoteAddress: req.ip, user, originatingIp, transmissionType: 'HTTP' };
      await deps.hooks.run('api:mail', { id: '', from, to, origin }, message);

      const result = await deps.ingest.ingest({
        from,
        to,
        origin,
        source: composedStream(mail.createReadStream()),
        maxSizeBytes: deps.config.smtp.maxSize,
      });
      return reply.send({
        id: result.id,
        messageId: result.messageId,
        recipients: result.recipients.map((r) => ({ recipient: r.recipient, seq: r.seq, zone: r.zone })),
      });
    });
  };
}

/** The composer's stream, with its file/URL refusals turned into 400s. */
async function* composedStream(stream: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EFILEACCESS' || code === 'EURLACCESS') throw HttpError.badRequest(`content from files or URLs is not allowed (${code})`);
    throw HttpError.badRequest(`message could not be built: ${(err as Error).message}`);
  }
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return v ? v.replace(/[\x00-\x1f\x7f]/g, '').slice(0, 255) : undefined;
}

function refuseExternalContent(message: Json): void {
  const check = (value: unknown, where: string) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const key of ['path', 'href'] as const) {
        if ((value as Json)[key] !== undefined) {
          throw HttpError.badRequest(`${where}.${key}: content must be given inline (content or a base64 string); file paths and URLs are not allowed`);
        }
      }
    }
  };
  for (const field of CONTENT_FIELDS) check(message[field], field);
  for (const field of LIST_FIELDS) {
    const list = message[field];
    if (Array.isArray(list)) list.forEach((item, i) => check(item, `${field}[${i}]`));
  }
}

function refuseMultilineAddresses(message: Json): void {
  const check = (value: unknown, where: string): void => {
    if (typeof value === 'string') {
      if (/[\r\n\x00]/.test(value)) throw HttpError.badRequest(`${where}: line breaks are not allowed in addresses`);
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => check(v, `${where}[${i}]`));
    } else if (value && typeof value === 'object') {
      const v = value as Json;
      check(v.address, `${where}.address`);
      check(v.name, `${where}.name`);
    }
  };
  for (const field of ADDRESS_FIELDS) check(message[field], field);
  const env = message.envelope as Json | undefined;
  if (env) {
    check(env.from, 'envelope.from');
    check(env.to, 'envelope.to');
    check(env.cc, 'envelope.cc');
    check(env.bcc, 'envelope.bcc');
  }
  check(message.messageId, 'messageId');
  check(message.inReplyTo, 'inReplyTo');
}
