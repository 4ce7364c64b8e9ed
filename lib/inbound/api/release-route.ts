/**
 * POST /api/messages/:id/release  {"to":["qa@example.test"]}
 *
 * Hands a stored message to Sluice's outbound queue for recipients inbound.release.allow lets
 * through (release.ts): 202 `{ id, release: { at, to, queueId } }`; a recipient outside the list
 * is 400 naming it, and nothing is released; release not configured is 400 saying so. The
 * outcome is kept with the message (its `releases`).
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { Inbox } from '../inbox.js';
import type { ReleasePolicy, ReleaseSink } from '../release.js';
import type { InboxAccess } from './access.js';
import { notFound } from './routes.js';

/** Recipients of one release at most. */
const MAX_TO = 50;

export interface ReleaseDeps {
  inbox: Inbox;
  access: InboxAccess;
  policy: ReleasePolicy;
  sink: ReleaseSink | undefined;
}

export function releaseRoute(deps: ReleaseDeps) {
  return (app: FastifyInstance) => {
    app.post('/api/messages/:id/release', {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } }, required: ['id'] },
        body: { type: 'object', properties: { to: { type: 'array', items: { type: 'string', maxLength: 320 }, minItems: 1, maxItems: MAX_TO } }, required: ['to'], additionalProperties: false },
      },
    }, async (req, reply) => {
      const { id } = req.params as { id: string };
      const { to } = req.body as { to: string[] };
      if (!deps.sink || !deps.policy.enabled) throw HttpError.badRequest('release is off: list the recipients it may go to in inbound.release.allow');
      const msg = await deps.inbox.message(id);
      if (!msg || !deps.access.message(req, msg.envelope)) throw notFound(id);
      const refused = to.map((address) => deps.policy.refusal(address)).filter((why): why is string => why !== undefined);
      if (refused.length) throw HttpError.badRequest(`not released: ${refused.join('; ')}`);
      const release = await deps.inbox.release(msg.envelope, [...new Set(to)], deps.policy.senderFor(msg.envelope), deps.sink);
      return reply.status(202).send({ id, release });
    });
  };
}
