/**
 * Reply schemas of the queue side of the API, shared by the routes (fastify serialises each reply
 * through its schema) and the OpenAPI document. Objects whose fields grow with Sluice (a
 * message's metadata) allow more properties, so a new field is never cut from a reply.
 */
const error = {
  type: 'object',
  description: 'every error: a name and what was wrong',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
} as const;

/** The error replies every route may give; a route adds its own success reply. */
export const errorReplies = { '4xx': error, '5xx': error } as const;

/**
 * What a route that declares no replies of its own is documented with (server.ts adds it): the
 * error shape, lenient (nothing required, more properties kept) because a compatibility route may
 * answer in its original's shape, and serialising must never turn a reply into a 500.
 */
const anyError = { ...error, required: [], additionalProperties: true } as const;
export const defaultReplies = { '4xx': anyError, '5xx': anyError } as const;

const domainCount = {
  type: 'object',
  properties: { domain: { type: 'string' }, queued: { type: 'integer' }, deferred: { type: 'integer' } },
  required: ['domain', 'queued', 'deferred'],
} as const;

export const zoneReply = {
  type: 'object',
  description: "a zone's pending deliveries, in total and per recipient domain (ZoneMTA's shape)",
  properties: {
    time: { type: 'integer', description: 'now, ms since the epoch' },
    started: { type: 'integer', description: 'when the queue was opened, ms' },
    processed: { type: 'integer', description: 'rows finished (delivered or bounced) since then' },
    queued: { type: 'integer' },
    deferred: { type: 'integer' },
    held: { type: 'integer', description: 'rows on hold' },
    domains: { type: 'array', items: domainCount },
  },
  required: ['time', 'started', 'processed', 'queued', 'deferred', 'domains'],
} as const;

const nullable = (type: string) => ({ type, nullable: true }) as const;

const rowView = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    seq: { type: 'string', description: 'three hex digits' },
    zone: { type: 'string' },
    recipient: { type: 'string' },
    status: { type: 'string', enum: ['QUEUED', 'DEFERRED', 'HELD'] },
    queued: { type: 'string', format: 'date-time', description: 'when the row is due' },
    deferred: {
      type: 'object',
      description: 'present once the row was tried',
      properties: {
        first: nullable('integer'),
        count: { type: 'integer' },
        last: nullable('integer'),
        next: { type: 'integer' },
        response: nullable('string'),
        category: nullable('string'),
        mx: nullable('string'),
        tls: nullable('boolean'),
        tlsPolicy: nullable('string'),
      },
    },
  },
  required: ['id', 'seq', 'zone', 'recipient', 'status', 'queued'],
} as const;

export const messageReply = {
  type: 'object',
  properties: {
    meta: { type: 'object', additionalProperties: true, description: 'the stored metadata: id, from, subject, size, messageId, bodyHash, origin, …' },
    messages: { type: 'array', items: rowView },
  },
  required: ['meta', 'messages'],
} as const;

export const deletedReply = {
  type: 'object',
  properties: { success: { type: 'boolean' }, id: { type: 'string' } },
  required: ['success', 'id'],
} as const;

export const retriedReply = {
  type: 'object',
  properties: { success: { type: 'boolean' }, id: { type: 'string' }, rescheduled: { type: 'integer', description: 'rows made due now' } },
  required: ['success', 'id', 'rescheduled'],
} as const;

/** POST /send and /send-raw: Sluice's reply, or ZoneMTA's when asked for (api.replyShape, X-Reply-Shape). */
export const sendReplySchema = {
  type: 'object',
  description: "Sluice's shape: { id, messageId, recipients: [{ recipient, seq, zone }] }; ZoneMTA's: { id, from, to, response }",
  properties: {
    id: { type: 'string', description: 'the queue id' },
    messageId: { type: 'string' },
    recipients: {
      type: 'array',
      items: { type: 'object', properties: { recipient: { type: 'string' }, seq: { type: 'integer' }, zone: { type: 'string' } }, required: ['recipient', 'seq', 'zone'] },
    },
    from: { type: 'string', description: "ZoneMTA's shape: the envelope sender" },
    to: { type: 'array', items: { type: 'string' }, description: "ZoneMTA's shape: the recipients" },
    response: { type: 'string', description: "ZoneMTA's shape: \"Message queued as ID\"" },
  },
  required: ['id'],
} as const;

export const metricsReply = { type: 'string', description: "Prometheus' text exposition format" } as const;
