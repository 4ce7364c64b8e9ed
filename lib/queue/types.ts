/**
 * The shapes stored in the queue: a message's metadata and one delivery row per recipient.
 */

/** Where a message came from, recorded with it (and shown by GET /message/:id). */
export interface Origin {
  /** the door: SMTP submission, POST /send, a DSN we made, a message released from an inbox */
  via: 'smtp' | 'api' | 'bounce' | 'release';
  /** listener name for SMTP (smtp, smtp.interfaces.NAME) */
  interface?: string;
  remoteAddress?: string;
  clientHostname?: string;
  /** the authenticated user (SMTP AUTH or X-Authenticated-User) */
  user?: string;
  /** X-Originating-IP given to POST /send */
  originatingIp?: string;
  transmissionType?: string;
}

export interface MessageMeta {
  id: string;
  created: number;
  /** envelope sender; '' is the null sender <> */
  from: string;
  rcptCount: number;
  /** the final header block (latin1 string of the raw bytes), ending with the blank line */
  headers: string;
  bodySize: number;
  /** headers + body, bytes */
  size: number;
  chunks: number;
  /** DKIM relaxed body hash, sha256, base64 */
  bodyHash: string;
  messageId: string;
  subject: string;
  origin: Origin;
  /** the first attempt waits until then (future Date header) */
  deferUntil?: number;
  /** DSN parameters of MAIL FROM (RFC 3461), when the client gave any */
  dsn?: { ret?: 'FULL' | 'HDRS'; envid?: string };
}

/** What a recipient's NOTIFY asks for (RFC 3461 §4.1): NEVER alone, or any of the others. */
export type NotifyOn = 'NEVER' | 'SUCCESS' | 'FAILURE' | 'DELAY';

/** DSN parameters of one RCPT TO, when the client gave any. */
export interface RecipientDsn {
  /** absent: FAILURE and DELAY, the usual default */
  notify?: NotifyOn[];
  /** ORCPT as "addr-type;address", xtext decoded */
  orcpt?: string;
}

/** queued: not tried yet; deferred: tried and waiting for its next attempt; held: parked by an
 * operator (never handed to a worker, its lifetime does not run, until it is released) */
export type RowStatus = 'queued' | 'deferred' | 'held';

export interface DeliveryRow {
  id: string;
  seq: number;
  zone: string;
  recipient: string;
  /** lower-case recipient domain */
  domain: string;
  status: RowStatus;
  created: number;
  /** when the next attempt is due, ms */
  due: number;
  attempts: number;
  firstFailure?: number;
  lastAttempt?: number;
  lastResponse?: string;
  category?: string;
  /** where the last attempt went: the MX host, whether TLS was used, and the TLS policy that applied */
  lastMx?: string;
  lastTls?: boolean;
  lastTlsPolicy?: string;
  /** the "delayed" notice was sent */
  warned?: boolean;
  /** when an operator held the row (status held) */
  heldAt?: number;
  /** how long the row has been held in all, before its current hold: its lifetime
   * (queue.maxQueueTime) is counted from created + heldMs */
  heldMs?: number;
  /** NOTIFY and ORCPT from RCPT TO */
  notify?: NotifyOn[];
  orcpt?: string;
}

/** When a row's queue lifetime started: its creation, moved on by the time it spent held. */
export const lifetimeStart = (row: Pick<DeliveryRow, 'created' | 'heldMs'>): number => row.created + (row.heldMs ?? 0);
