/**
 * GET /api/webhooks/deliveries: the inbox webhook's notifications still to deliver (`pending`:
 * event id, URL, tries, next try) and its latest tries (`recent`, newest first: status or error,
 * time taken, and what came of it), so an operator sees why an endpoint hears nothing.
 */
import type { FastifyInstance } from 'fastify';
import type { Inbox } from '../inbox.js';

export function webhookRoute(inbox: Inbox) {
  return (app: FastifyInstance) => {
    app.get('/api/webhooks/deliveries', async () => {
      const { pending, recent } = inbox.webhooks.deliveries();
      return {
        enabled: inbox.webhooks.enabled,
        pending: pending.map((p) => ({ id: p.id, url: p.url, kind: p.kind, attempts: p.attempts, next: new Date(p.nextAt).toISOString(), created: new Date(p.created).toISOString() })),
        recent,
      };
    });
  };
}
