/**
 * The catalogue of message events. Each code is stable: log pipelines match on it.
 * README's "Log events" table lists them all (a test keeps the two in step).
 */
export const LOG_EVENTS = {
  QUEUED: 'a message was stored durably and acknowledged',
  NOQUEUE: 'a message was refused before it was stored (size, hook, policy)',
  STORE_FAILED: 'storing a message failed; the client got a temporary error',
  DELETED: 'a message was removed from the queue by an operator',
  DELIVERED: 'a recipient was accepted by the destination',
  DEFERRED: 'a delivery failed temporarily and will be retried',
  BOUNCED: 'a delivery failed permanently',
  DROPPED: 'a delivery was dropped without a bounce',
  HELD: 'an operator put deliveries on hold',
  RELEASED: 'an operator released held deliveries (due now)',
  GC: 'leftovers of interrupted ingests were collected',
  BOUNCE_QUEUED: 'a bounce (DSN) to the sender was queued',
  DELAY_NOTICE_QUEUED: 'a "delayed" notice (DSN) to the sender was queued',
  RECEIVED: 'the inbound receiver stored a message for its inboxes',
  RECEIVE_FAILED: 'the inbound receiver could not store a message; the client got a temporary error',
  SUCCESS_NOTICE_QUEUED: 'a success notice (DSN, NOTIFY=SUCCESS) to the sender was queued',
} as const;

export type LogEvent = keyof typeof LOG_EVENTS;
