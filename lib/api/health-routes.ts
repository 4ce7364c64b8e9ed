/**
 * GET /health: liveness with the state of the queue database and its disk.
 */
import type { FastifyInstance } from 'fastify';
import type { DiskGuard } from '../queue/disk-space.js';
import type { QueueStore } from '../queue/store.js';

export function healthRoutes(deps: { store: QueueStore; disk: DiskGuard }) {
  return (app: FastifyInstance) => {
    app.get('/health', async (_req, reply) => {
      const db = deps.store.isOpen ? 'open' : 'closed';
      const diskOk = deps.disk.hasRoom(0);
      const ok = db === 'open' && diskOk;
      return reply.status(ok ? 200 : 503).send({
        status: ok ? 'ok' : 'degraded',
        queue: {
          db,
          ...deps.store.counters.totals(),
          freeBytes: deps.disk.freeBytes(),
          accepting: diskOk,
          // how many commits shared each fsync (group commit); the benchmark prints it
          commits: { ...deps.store.commitStats },
        },
      });
    });
  };
}
