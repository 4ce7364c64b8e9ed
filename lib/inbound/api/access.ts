/**
 * Who may read which inbox through the API: every inbox is public except the private ones
 * (private.ts), which need their key in an `X-Inbox-Key` header (or `Mailsac-Key`, Mailsac's
 * header, where it is not the API token). A key is taken from headers only, never from a URL, so
 * it does not end up in logs. Without the key a private inbox reads as empty: the routes answer as
 * they do for an inbox nobody wrote to, so nothing tells that it exists.
 */
import type { FastifyRequest } from 'fastify';
import { HttpError } from '../../api/errors.js';
import type { PrivateInboxes } from '../private.js';
import type { RecipientPolicy } from '../recipients.js';
import type { InboundEnvelope } from '../store/types.js';

export interface InboxRef {
  /** the inbox (canonical address) */
  inbox: string;
  /** the plus tag the address asked for ('' for none) */
  tag: string;
  /** the caller may read it */
  readable: boolean;
}

export class InboxAccess {
  constructor(
    private readonly policy: RecipientPolicy,
    private readonly privates: PrivateInboxes,
  ) {}

  /** The key the request carries, if any. */
  key(req: FastifyRequest): string | undefined {
    const given = req.headers['x-inbox-key'] ?? req.headers['mailsac-key'];
    return typeof given === 'string' && given ? given : undefined;
  }

  /** The inbox an address in a URL names, and whether this request may read it; 400 for a non-address. */
  inbox(req: FastifyRequest, address: string): InboxRef {
    const found = this.policy.lookup(address);
    if (!found) throw HttpError.badRequest(`${JSON.stringify(address.slice(0, 80))} is not an email address`);
    return { ...found, readable: this.privates.allows(found.inbox, this.key(req)) };
  }

  /** May this request read a message asked for by id alone (through any of its inboxes)? */
  message(req: FastifyRequest, envelope: InboundEnvelope): boolean {
    const key = this.key(req);
    return envelope.inboxes.some((inbox) => this.privates.allows(inbox, key));
  }

  /** May a holder of `key` read `inbox` (WebSocket subscriptions, POP3)? */
  allows(inbox: string, key: string | undefined): boolean {
    return this.privates.allows(inbox, key);
  }
}
