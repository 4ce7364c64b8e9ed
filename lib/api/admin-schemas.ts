/**
 * Request and reply schemas of the queue administration routes (admin-routes.ts,
 * suppression-routes.ts): they validate requests and make the OpenAPI document.
 */
import type { RowFilter } from '../queue/select.js';

/**
 * The filter a request gives: RowFilter's fields under the same names, except the ages, which an
 * operator gives in whole seconds (minAge, maxAge) where RowFilter has ms. A new RowFilter field
 * needs a schema below (the compiler asks for it) and nothing else.
 */
export type FilterFields = Omit<RowFilter, 'minAgeMs' | 'maxAgeMs'> & { minAge?: number; maxAge?: number };

const status = { type: 'string', enum: ['queued', 'deferred', 'held'], description: 'queued: not tried yet; deferred: tried, waiting to retry; held: parked until released' } as const;

/** The filter fields, shared by the listing (query) and the bulk actions (body). */
const filterFields = {
  id: { type: 'string', maxLength: 64, description: 'one message (its queue id)' },
  seq: { type: 'integer', minimum: 0, maximum: 65535, description: 'one row of that message' },
  zone: { type: 'string', maxLength: 64 },
  domain: { type: 'string', maxLength: 255, description: 'recipient domain' },
  sender: { type: 'string', maxLength: 320, description: 'envelope sender: an address, @domain, or <> for the null sender' },
  status,
  minAge: { type: 'integer', minimum: 0, description: 'rows queued at least this many seconds ago' },
  maxAge: { type: 'integer', minimum: 0, description: 'rows queued at most this many seconds ago' },
  category: { type: 'string', maxLength: 64, description: 'class of the last reply: greylist, blocklist, mailbox-full, unknown-user, policy, spam, dns, network, tls, rate-limit, message-size, protocol, other' },
} as const satisfies Record<keyof FilterFields, object>;

/** A whole number in a query string (the API does not coerce types). */
const digits = (description: string, max = 12) => ({ type: 'string', pattern: `^[0-9]{1,${max}}$`, description }) as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterFields,
    seq: digits(filterFields.seq.description, 5),
    minAge: digits(filterFields.minAge.description),
    maxAge: digits(filterFields.maxAge.description),
    order: { type: 'string', enum: ['oldest', 'newest'], description: 'oldest first (default) or newest first' },
    limit: digits('rows per page, 1 to 1000 (default 100)', 4),
    cursor: { type: 'string', maxLength: 40, description: '`next` of the page before' },
  },
} as const;

const nullable = (type: string) => ({ type, nullable: true }) as const;

const listedRow = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    seq: { type: 'integer' },
    cursor: { type: 'string', description: 'ID.SEQ (seq in hex), as ZoneMTA prints a delivery' },
    zone: { type: 'string' },
    recipient: { type: 'string' },
    domain: { type: 'string' },
    from: nullable('string'),
    subject: nullable('string'),
    size: nullable('integer'),
    status,
    created: { type: 'integer', description: 'queued at, ms since the epoch' },
    due: { type: 'integer', description: 'next attempt, ms (meaningless while held)' },
    attempts: { type: 'integer' },
    heldAt: { type: 'integer' },
    lastAttempt: nullable('integer'),
    lastResponse: nullable('string'),
    category: nullable('string'),
  },
  required: ['id', 'seq', 'cursor', 'zone', 'recipient', 'domain', 'status', 'created', 'due', 'attempts'],
} as const;

export const listReply = {
  type: 'object',
  properties: {
    rows: { type: 'array', items: listedRow },
    next: { ...nullable('string'), description: 'the cursor of the next page; null at the end' },
    scanned: { type: 'integer', description: 'rows read for this page, matching or not (at most 50,000)' },
  },
  required: ['rows', 'next', 'scanned'],
} as const;

export const summaryQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    zone: { type: 'string', maxLength: 64 },
    status: { type: 'string', enum: ['pending', 'held', 'all'], description: 'pending (queued and deferred), held, or all (default)' },
    top: digits('domains shown per zone, largest first (default 50, at most 10000); the rest are summed in `others`', 5),
  },
} as const;

const shapeLine = {
  total: { type: 'integer' },
  held: { type: 'integer' },
  ages: { type: 'array', items: { type: 'integer' }, description: 'rows per age bucket: younger than buckets[0] minutes, …, older than the last' },
} as const;

export const summaryReply = {
  type: 'object',
  properties: {
    time: { type: 'integer' },
    buckets: { type: 'array', items: { type: 'integer' }, description: 'bucket bounds, minutes' },
    total: { type: 'object', properties: shapeLine, required: ['total', 'held', 'ages'] },
    zones: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          zone: { type: 'string' },
          ...shapeLine,
          domains: { type: 'array', items: { type: 'object', properties: { domain: { type: 'string' }, ...shapeLine }, required: ['domain', 'total', 'held', 'ages'] } },
          others: { type: 'object', properties: { domains: { type: 'integer' }, ...shapeLine } },
        },
        required: ['zone', 'total', 'held', 'ages', 'domains'],
      },
    },
  },
  required: ['time', 'buckets', 'total', 'zones'],
} as const;

export const actionBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    ...filterFields,
    all: { type: 'boolean', description: 'every row (required when no filter is given)' },
    dryRun: { type: 'boolean', description: 'count what would change, change nothing' },
  },
} as const;

export const actionReply = {
  type: 'object',
  description: 'the result; with Accept: application/x-ndjson, one {"progress": …} line per window of messages and {"result": …} last',
  properties: {
    action: { type: 'string', enum: ['flush', 'delete', 'hold', 'release'] },
    dryRun: { type: 'boolean' },
    matched: { type: 'integer', description: 'rows selected that the action applies to' },
    changed: { type: 'integer', description: 'rows changed (dry run: that would be)' },
    busy: { type: 'integer', description: 'rows left alone because a worker is delivering them now' },
    messages: { type: 'integer' },
  },
  required: ['action', 'dryRun', 'matched', 'changed', 'busy', 'messages'],
} as const;

export const suppressionEntry = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '24 hex digits' },
    kind: { type: 'string', enum: ['address', 'domain'] },
    value: { type: 'string' },
    created: { type: 'integer' },
    expires: { type: 'integer' },
    reason: { type: 'string' },
  },
  required: ['id', 'kind', 'value', 'created'],
} as const;

export const suppressionAdd = {
  type: 'object',
  additionalProperties: false,
  properties: {
    address: { type: 'string', maxLength: 320 },
    domain: { type: 'string', maxLength: 255 },
    expires: { type: 'integer', minimum: 0, description: 'ms since the epoch' },
    ttl: { type: 'integer', minimum: 1, description: 'seconds from now (instead of expires)' },
    reason: { type: 'string', maxLength: 200 },
  },
} as const;
