/**
 * The HTTP API: one fastify app, routes registered from their own modules with their schemas.
 * Errors always leave as JSON `{ error, message }` with the right status, never a stack trace.
 * When a token is configured every route requires it (and the config refuses to listen beyond
 * loopback without one). Clients cannot hold it up: request and idle deadlines, a cap on
 * connections, and large JSON bodies parsed off the event loop (json-body.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyInstance } from "fastify";
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { SmtpError } from '../errors/smtp-error.js';
import { isStoreUnavailable } from '../store/write-guard.js';
import { HttpError, httpFromSmtp, type HttpErrorName } from './errors.js';
import { installJsonBodyParser } from './json-body.js';
import { registerOpenApi } from './openapi.js';
import { defaultReplies } from './response-schemas.js';

const VERSION = (createRequire(import.meta.url)('../../../package.json') as { version: string }).version;

export type ApiRoutes = (app: FastifyInstance) => void | Promise<void>;

export function createApi(config: Config, logger: Logger, routes: ApiRoutes[], onRoute?: (route: { method: string; url: string; hidden: boolean }) => void): FastifyInstance {
  const { requestTimeout, idleTimeout, maxConnections } = config.api;
  const app = Fastify({
    // request lines are noise at info; errors still reach the log
    loggerInstance: logger.child({ component: 'api' }, { level: 'warn' }) as unknown as FastifyBaseLogger,
    bodyLimit: config.api.maxBodySize,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: true,
    // an inbox address in a path may be up to 320 characters (64 + @ + 255)
    routerOptions: { maxParamLength: 400 },
    // a request (headers and body) must arrive within requestTimeout (408 after it); a quiet
    // connection is closed after idleTimeout, so slow or idle clients cannot hold sockets
    requestTimeout,
    connectionTimeout: idleTimeout,
    keepAliveTimeout: idleTimeout,
    // Node's server takes the deadline at construction too (set afterwards, it covers the
    // headers only), and checks it on this interval (30 s by default)
    http: { requestTimeout, connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(requestTimeout / 4))) },
  });
  limitConnections(app, maxConnections, logger);

  // JSON only: fastify also parses text/plain by default, which would let a wrong Content-Type
  // through to the schema (a confusing 400) instead of the 415 it is
  app.removeContentTypeParser('text/plain');
  installJsonBodyParser(app);

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
    const e = err instanceof SmtpError ? httpFromSmtp(err) : isStoreUnavailable(err) ? HttpError.storeRecovering() : err;
    if (e instanceof HttpError) {
      if (e.statusCode === 503) reply.header('retry-after', '1');
      return reply.status(e.statusCode).send({ error: e.error, message: e.message });
    }
    const fe = e as FastifyError;
    if (fe.validation) {
      const v = fe.validation[0];
      const field = [fe.validationContext, ...(v?.instancePath ?? '').split('/').filter(Boolean)].join('.');
      const extra = v?.keyword === 'additionalProperties' ? ` (unknown field "${String((v.params as { additionalProperty?: string }).additionalProperty)}")` : '';
      return reply.status(400).send(HttpError.body('ValidationError', `${field}: ${v?.message ?? 'invalid'}${extra}`));
    }
    const status = typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'API error');
    const name: HttpErrorName = status === 413 ? 'PayloadTooLarge' : status === 415 ? 'UnsupportedMediaType' : status === 429 ? 'TooManyRequests' : status >= 500 ? 'InternalError' : 'BadRequest';
    return reply.status(status).send({ error: name, message: status >= 500 ? 'Internal error' : fe.message });
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send(HttpError.body('NotFound', `No route ${req.method} ${req.url.split('?')[0]}`)));

  if (onRoute) {
    app.addHook('onRoute', (r) => {
      for (const method of [r.method].flat()) onRoute({ method, url: r.url, hidden: Boolean((r.schema as { hide?: boolean } | undefined)?.hide) });
    });
  }
  // a route without reply schemas (the inbox's, plugins') is still documented with the error reply
  // every route has; registered before the OpenAPI plugin so that it sees the result
  app.addHook('onRoute', (r) => {
    const schema = r.schema as { hide?: boolean; response?: unknown } | undefined;
    if (!schema?.hide && !schema?.response) r.schema = { ...schema, response: defaultReplies };
  });
  registerOpenApi(app, VERSION);
  // inside a plugin, so that they are added after the OpenAPI plugin has loaded and it sees them
  void app.register(async (scope) => {
    for (const register of routes) await register(scope);
  });
  return app;
}


/** At most `max` connections at once; Node closes the ones over it as they come (logged once a minute). */
function limitConnections(app: FastifyInstance, max: number, logger: Logger): void {
  app.server.maxConnections = max;
  let dropped = 0;
  let lastLog = 0;
  app.server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - lastLog < 60_000) return;
    logger.warn({ component: 'api', dropped, maxConnections: max }, `API: ${dropped} connections closed at once (more than api.maxConnections = ${max})`);
    lastLog = now;
    dropped = 0;
  });
}

export async function listenApi(app: FastifyInstance, config: Config): Promise<AddressInfo> {
  await app.listen({ host: config.api.host, port: config.api.port });
  return app.server.address() as AddressInfo;
}
