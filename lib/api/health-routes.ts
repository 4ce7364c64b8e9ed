/**
 * Health: GET /health (the state of the queue database and its disk, as before), GET
 * /health/live (the process answers: nothing else is checked, so a restart is never caused by
 * a dependency) and GET /health/ready (readiness.ts: 200 when ready, 503 with what is not).
 */
import type { FastifyInstance } from 'fastify';
import type { DiskGuard } from '../queue/disk-space.js';
import type { QueueStore } from '../queue/store.js';
import type { Readiness } from './readiness.js';
import { healthSchema, liveSchema, readySchema } from './health-schema.js';

export function healthRoutes(deps: { store: QueueStore; disk: DiskGuard; readiness?: Readiness }) {
  return (app: FastifyInstance) => {
    app.get('/health', { schema: healthSchema }, async (_req, reply) => {
      const db = deps.store.isOpen ? 'open' : 'closed';
      const counters = deps.store.counters;
      const diskOk = deps.disk.hasRoom(0);
      const ok = db === 'open' && diskOk;
      return reply.status(ok ? 200 : 503).send({
        status: ok ? 'ok' : 'degraded',
        queue: {
          db,
          // while the rows found at start are counted, the totals are partial: none are shown
          ...(counters.loading ? { loading: true, countedRows: counters.loadedRows, queued: null, deferred: null } : { loading: false, ...counters.totals() }),
          freeBytes: deps.disk.freeBytes(),
          accepting: diskOk,
          // how many commits shared each fsync (group commit); the benchmark prints it
          commits: { ...deps.store.commitStats },
        },
      });
    });
    app.get('/health/live', { schema: liveSchema }, async () => ({ status: 'ok' as const }));
    const readiness = deps.readiness;
    if (readiness) {
      app.get('/health/ready', { schema: readySchema }, async (_req, reply) => {
        const report = await readiness.check();
        return reply.status(report.ready ? 200 : 503).send({ status: report.ready ? 'ready' : 'not ready', ...report });
      });
    }
  };
}
