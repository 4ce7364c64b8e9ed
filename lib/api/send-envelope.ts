/**
 * What POST /send and POST /send-raw share once they have an envelope: its checks (a sender, one
 * to maxRecipients recipients, every address well formed), who sent it (the socket, and what a
 * trusted front end says in X-Authenticated-User / X-Originating-IP), and the reply, in Sluice's
 * shape or ZoneMTA's.
 */
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import { checkAddress } from '../accept/address.js';
import type { IngestResult } from '../accept/ingest.js';
import type { Config } from '../config/schema.js';
import type { Origin } from '../queue/types.js';
import { HttpError } from './errors.js';

export function checkEnvelope(from: unknown, to: unknown, maxRecipients: number): asserts to is string[] {
  if (typeof from !== 'string' || !from) {
    throw HttpError.badRequest('from: a sender address is required (from, sender, replyTo or envelope.from)');
  }
  if (!Array.isArray(to) || to.some((r) => typeof r !== 'string')) throw HttpError.badRequest('to: recipients must be addresses');
  if (!to.length) throw HttpError.badRequest('to: at least one recipient is required (to, cc, bcc or envelope.to)');
  if (to.length > maxRecipients) {
    throw HttpError.badRequest(`to: too many recipients (${to.length}); at most ${maxRecipients} per message`);
  }
  check(from, 'from');
  for (const rcpt of to as string[]) check(rcpt, 'to');
}

function check(address: string, field: string): void {
  try {
    checkAddress(address, false);
  } catch (err) {
    throw HttpError.badRequest(`${field}: ${(err as Error).message}`);
  }
}

/** Who sent it: the socket, and what a trusted front end says in X-Authenticated-User / X-Originating-IP. */
export function originOf(req: FastifyRequest): Origin {
  const user = headerValue(req.headers['x-authenticated-user']);
  const originatingIp = headerValue(req.headers['x-originating-ip'])?.replace(/^\[(.*)\]$/, '$1');
  if (originatingIp !== undefined && !isIP(originatingIp)) {
    throw HttpError.badRequest('X-Originating-IP: expected an IPv4 or IPv6 address');
  }
  return { via: 'api', remoteAddress: req.ip, user, originatingIp, transmissionType: 'HTTP' };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  const clean = v?.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 255);
  return clean || undefined;
}

export const REPLY_SHAPES = ['sluice', 'zonemta'] as const;
export type ReplyShape = (typeof REPLY_SHAPES)[number];

/** The shape asked for in X-Reply-Shape, else the configured one; an unknown name is a 400. */
export function replyShapeOf(req: FastifyRequest, config: Config): ReplyShape {
  const asked = headerValue(req.headers['x-reply-shape'])?.toLowerCase();
  // the config's value was checked against the same list when it loaded
  if (asked === undefined) return config.api.replyShape as ReplyShape;
  if (!(REPLY_SHAPES as readonly string[]).includes(asked)) {
    throw HttpError.badRequest(`X-Reply-Shape: expected one of ${REPLY_SHAPES.join(', ')}`);
  }
  return asked as ReplyShape;
}

/**
 * Sluice's reply names every recipient's row (seq, zone); ZoneMTA's is
 * `{ id, from, to, response: "Message queued as <id>" }`, for the scripts written against it.
 */
export function sendReply(result: IngestResult, from: string, shape: ReplyShape) {
  if (shape === 'zonemta') {
    return { id: result.id, from, to: result.recipients.map((r) => r.recipient), response: `Message queued as ${result.id}` };
  }
  return {
    id: result.id,
    messageId: result.messageId,
    recipients: result.recipients.map((r) => ({ recipient: r.recipient, seq: r.seq, zone: r.zone })),
  };
}
