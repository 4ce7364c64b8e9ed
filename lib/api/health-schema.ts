/**
 * Schemas of the health replies (health-routes.ts), for the OpenAPI document and the serialiser.
 */
const queueState = {
  type: 'object',
  properties: {
    db: { type: 'string', enum: ['open', 'closed'] },
    loading: { type: 'boolean', description: 'the rows found at start are still being counted: queued and deferred are null until then' },
    countedRows: { type: 'integer', description: 'while loading: rows counted so far' },
    queued: { type: 'integer', nullable: true },
    deferred: { type: 'integer', nullable: true },
    freeBytes: { type: 'number' },
    accepting: { type: 'boolean' },
    commits: { type: 'object', properties: { syncs: { type: 'integer' }, batches: { type: 'integer' } } },
  },
  required: ['db', 'queued', 'deferred', 'accepting'],
} as const;

const health = {
  type: 'object',
  properties: { status: { type: 'string', enum: ['ok', 'degraded'] }, queue: queueState },
  required: ['status', 'queue'],
} as const;

export const healthSchema = {
  description: 'the queue database and its disk; 503 and "degraded" when the database is closed or the disk is full',
  response: { 200: health, 503: health },
} as const;

export const liveSchema = {
  description: 'the process answers; nothing else is checked',
  response: { 200: { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } }, required: ['status'] } },
} as const;

const ready = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not ready'] },
    ready: { type: 'boolean' },
    listeners: { type: 'boolean', description: 'every configured listener is up' },
    db: {
      type: 'object',
      properties: { open: { type: 'boolean' }, writable: { type: 'boolean' }, diskRoom: { type: 'boolean' } },
      required: ['open', 'writable', 'diskRoom'],
    },
    zones: {
      type: 'object',
      description: 'per zone: connected workers, whether it is stalled (rows due for longer than queue.stalledAfter and no attempt meanwhile), the last attempt',
      additionalProperties: {
        type: 'object',
        properties: { workers: { type: 'integer' }, stalled: { type: 'boolean' }, lastAttempt: { type: 'string', nullable: true } },
        required: ['workers', 'stalled', 'lastAttempt'],
      },
    },
  },
  required: ['status', 'ready', 'listeners', 'db', 'zones'],
} as const;

export const readySchema = {
  description: 'whether this instance should get traffic: listeners up, queue database writable, workers connected in every zone, no zone stalled; 503 when not',
  response: { 200: ready, 503: ready },
} as const;
