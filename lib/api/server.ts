/**
 * The HTTP API: one fastify app, routes registered from their own modules with their schemas.
 * Errors always leave as JSON `{ error, message }` with the right status, never a stack trace.
 * When a token is configured every route requires it (and the config refuses to listen beyond
 * loopback without one).
 */
import { timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { SmtpError } from '../errors/smtp-error.js';
import { HttpError, httpFromSmtp } from './errors.js';

export type ApiRoutes = (app: FastifyInstance) => void;

export function createApi(config: Config, logger: Logger, routes: ApiRoutes[]): FastifyInstance {
  const app = Fastify({
    // request lines are noise at info; errors still reach the log
    loggerInstance: logger.child({ component: 'api' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    bodyLimit: config.api.maxBodySize,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    // an inbox address in a path may be up to 320 characters (64 + @ + 255)
    routerOptions: { maxParamLength: 400 },
  });

  // JSON only: fastify also parses text/plain by default, which would let a wrong Content-Type
  // through to the schema (a confusing 400) instead of the 415 it is
  app.removeContentTypeParser('text/plain');

  const token = config.api.token;
  if (token) {
    const expected = Buffer.from(`Bearer ${token}`);
    app.addHook('onRequest', async (req) => {
      // Mailsac's clients send their key in Mailsac-Key: the inbox API takes it as the token
      const mailsacKey = req.url.startsWith('/api/') ? req.headers['mailsac-key'] : undefined;
      const given = Buffer.from(req.headers.authorization ?? (typeof mailsacKey === 'string' ? `Bearer ${mailsacKey}` : ''));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw HttpError.unauthorized();
    });
  }

  app.setErrorHandler((err: FastifyError | HttpError | SmtpError, req, reply) => {
    const e = err instanceof SmtpError ? httpFromSmtp(err) : err;
    if (e instanceof HttpError) return reply.status(e.statusCode).send({ error: e.error, message: e.message });
    const fe = e as FastifyError;
    if (fe.validation) {
      const v = fe.validation[0];
      const field = [fe.validationContext, ...(v?.instancePath ?? '').split('/').filter(Boolean)].join('.');
      const extra = v?.keyword === 'additionalProperties' ? ` (unknown field "${String((v.params as { additionalProperty?: string }).additionalProperty)}")` : '';
      return reply.status(400).send({ error: 'ValidationError', message: `${field}: ${v?.message ?? 'invalid'}${extra}` });
    }
    const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'API error');
    const name = status === 413 ? 'PayloadTooLarge' : status === 415 ? 'UnsupportedMediaType' : status === 429 ? 'TooManyRequests' : status >= 500 ? 'InternalError' : 'BadRequest';
    return reply.status(status).send({ error: name, message: status >= 500 ? 'Internal error' : fe.message });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error: 'NotFound', message: `No route ${req.method} ${req.url.split('?')[0]}` }));

  for (const register of routes) register(app);
  return app;
}

export async function listenApi(app: FastifyInstance, config: Config): Promise<AddressInfo> {
  await app.listen({ host: config.api.host, port: config.api.port });
  return app.server.address() as AddressInfo;
}
