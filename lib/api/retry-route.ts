/**
 * POST /message/:id/retry: every waiting delivery of the message becomes due now.
 */
import type { FastifyInstance } from 'fastify';
import { isQueueId } from '../queue/ids.js';
import { retryNow } from '../queue/requeue.js';
import type { Scheduler } from '../queue/scheduler.js';
import type { QueueStore } from '../queue/store.js';
import { HttpError } from './errors.js';
import { errorReplies, retriedReply } from './response-schemas.js';

const idParams = { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] } as const;

export function retryRoute(deps: { store: QueueStore; scheduler: Scheduler }) {
  return (app: FastifyInstance) => {
    app.post('/message/:id/retry', { schema: { params: idParams, response: { 200: retriedReply, ...errorReplies } } }, async (req) => {
      const { id } = req.params as { id: string };
      const moved = isQueueId(id) ? await retryNow(deps.store, deps.scheduler, id) : undefined;
      if (moved === undefined) throw HttpError.notFound(`No message ${JSON.stringify(id.slice(0, 64))} in the queue`);
      return { success: true, id, rescheduled: moved };
    });
  };
}
