/**
 * GET /metrics: Prometheus' text format from one prom-client registry per process, with Node's
 * process metrics (sluice_process_*, sluice_nodejs_*) and whatever parts of Sluice register on it.
 *
 * Labels are bounded sets only (a zone, a configured domain, a result, a reason class, a throttle
 * tier), never a sender, a recipient or a remote domain, so the number of series cannot grow with
 * the traffic.
 */
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { metricsReply } from './response-schemas.js';

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'sluice_' });
  return registry;
}

export function metricsRoute(registry: Registry, url = '/metrics') {
  return (app: FastifyInstance) => {
    app.get(url, { schema: { description: 'Prometheus metrics', response: { 200: metricsReply } } }, async (_req, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    });
  };
}
