/**
 * Private inboxes and aliases over the API:
 *
 *   POST   /api/private  {"target":"qa@sluice.test"}   reserve an address or a domain
 *          ("example.test", "*.example.test"): `{ target, key }`, the key shown this once; posting
 *          a reserved target again gives it a new key (the old one stops working at once)
 *   GET    /api/private                                 the reservations (targets and dates, never keys)
 *   DELETE /api/private/:target                         make it public again
 *   GET    /api/inboxes/:address/altinbox               the address's altinbox alias
 *
 * Reservations are the operator's: with `api.token` set they need it, like every route; on the
 * loopback default they are as open as the rest of the API. Reading a private inbox needs its key
 * in X-Inbox-Key (access.ts).
 */
import type { FastifyInstance } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { Inbox } from '../inbox.js';
import { PrivateInboxes } from '../private.js';
import type { InboxAccess } from './access.js';

export interface PrivateDeps {
  inbox: Inbox;
  access: InboxAccess;
}

const targetOf = (value: string) => {
  const target = PrivateInboxes.target(value);
  if (!target) throw HttpError.badRequest(`${JSON.stringify(value.slice(0, 80))} is neither an address nor a domain like "example.test" or "*.example.test"`);
  return target;
};

export function privateRoutes(deps: PrivateDeps) {
  const { inbox, access } = deps;
  return (app: FastifyInstance) => {
    app.post('/api/private', {
      schema: { body: { type: 'object', properties: { target: { type: 'string', minLength: 1, maxLength: 330 } }, required: ['target'], additionalProperties: false } },
    }, async (req, reply) => {
      const target = targetOf((req.body as { target: string }).target);
      const key = await inbox.privates.reserve(target);
      return reply.status(201).send({ target, key });
    });

    app.get('/api/private', async () => ({ reservations: inbox.privates.list() }));

    app.delete('/api/private/:target', { schema: { params: { type: 'object', properties: { target: { type: 'string', maxLength: 330 } }, required: ['target'] } } }, async (req, reply) => {
      const target = targetOf((req.params as { target: string }).target);
      if (!(await inbox.privates.release(target))) throw HttpError.notFound(`${target} is not private`);
      return reply.status(204).send();
    });

    app.get('/api/inboxes/:address/altinbox', { schema: { params: { type: 'object', properties: { address: { type: 'string', maxLength: 400 } }, required: ['address'] } } }, async (req) => {
      const { inbox: name, readable } = access.inbox(req, (req.params as { address: string }).address);
      if (!readable) throw HttpError.notFound(`No alias for ${name}`);
      return { address: name, altinbox: await inbox.aliases.aliasFor(name) };
    });
  };
}
