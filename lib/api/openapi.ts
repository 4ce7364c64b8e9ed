/**
 * The API describes itself: an OpenAPI 3 document at GET /openapi.json, made by @fastify/swagger
 * from the same route schemas that validate requests, and an interactive page at /docs
 * (@fastify/swagger-ui, served from the package: no CDN). Both are behind the API token like every
 * route. The document can only list routes registered after it (swagger listens for them as they
 * are added), so createApi registers every route inside `routes()`, after this.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export function registerOpenApi(app: FastifyInstance, version: string): void {
  void app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Sluice',
        version,
        description:
          'Sluice: an outbound MTA with sending zones (POST /send, the queue) and a receiver for disposable addresses (the inbox API under /api, with Mailsac-compatible routes). ' +
          'GET /api/ws is a WebSocket: send {"type":"subscribe","inboxes":[…]} and receive {"type":"message",…} for those inboxes (README, "The inbox API").',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'api.token, required when the API listens beyond loopback' },
          inboxKey: { type: 'apiKey', in: 'header', name: 'X-Inbox-Key', description: 'the key of a private inbox' },
        },
      },
    },
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
