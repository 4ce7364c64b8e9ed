/**
 * The master–worker protocol, version 1: a closed union of messages, so that a new command does
 * not compile until both ends handle it. Every request carries `req`; the answer carries the
 * same `req`. Errors cross as structured fields (code, responseCode, response), never as text to
 * parse.
 *
 *   worker                          master
 *   hello {zone, workerId, secret} → welcome | (close)
 *   fetch {req}                    → job {req, job}          (held until work is due)
 *                                    [+ job.prefetched body frames {req, bytes}: the whole body of
 *                                     a message just accepted, sent along so the worker need
 *                                     not ask for it]
 *   body {req, id, chunk}          → body frame {req, bytes} | bodyEnd {req}
 *   result {req, leaseId, rows, keptSession} → ack {req}
 *                                  ← cancel {leaseId}        (unasked: the lease expired; stop
 *                                                             the attempt and report at once)
 */
export const PROTOCOL_VERSION = 2;

/** One recipient of a job. */
export interface JobRow {
  seq: number;
  recipient: string;
}

/** A delivery the master hands to a worker: one message, one domain, one or more recipients. */
export interface Job {
  leaseId: string;
  id: string;
  zone: string;
  domain: string;
  from: string;
  rows: JobRow[];
  /** stored header block (latin1) and DKIM relaxed body hash */
  headers: string;
  bodyHash: string;
  size: number;
  chunks: number;
  messageId: string;
  created: number;
  /** 0 for the first try */
  attempts: number;
  /** the class of the last failure, if any (a blocklisted address makes the next try rotate) */
  lastCategory?: string;
  /** this many body frames (all `chunks` of the body) follow the job frame with its req */
  prefetched?: number;
}

export type Outcome = 'delivered' | 'deferred' | 'bounced';

/** What happened to one recipient, as the worker saw it. */
export interface RowResult {
  seq: number;
  outcome: Outcome;
  /** the remote reply or our description of the failure */
  response: string;
  responseCode?: number;
  /** enhanced status, e.g. 5.1.1 */
  status?: string;
  category?: string;
  /** nodemailer error code (ECONNECTION, ETIMEDOUT, EDNS, ETLS, EPROTOCOL, EENVELOPE …) */
  code?: string;
  mx?: string;
  localAddress?: string;
  tls?: boolean;
  /** which TLS rules applied: "dane", "mta-sts", "mta-sts-testing", or the configured policy */
  tlsPolicy?: string;
  /** the reply after the final dot was lost: the message may have arrived (RFC 1047) */
  uncertain?: boolean;
  /** how long the attempt took in the worker, from job to result (Postfix logs it as delays=) */
  durationMs?: number;
}

export type WorkerMessage =
  | { type: 'hello'; version: number; zone: string; workerId: string; secret: string }
  | { type: 'fetch'; req: number }
  | { type: 'body'; req: number; id: string; chunk: number }
  /** keptSession: the worker keeps its SMTP session open for the next message to that host */
  | { type: 'result'; req: number; leaseId: string; results: RowResult[]; keptSession?: boolean };

export type MasterMessage =
  | { type: 'welcome'; version: number; workerId: string }
  | { type: 'job'; req: number; job: Job }
  | { type: 'bodyEnd'; req: number }
  | { type: 'ack'; req: number }
  | { type: 'error'; req: number; message: string }
  /** the lease expired: the worker stops that attempt and reports what it has */
  | { type: 'cancel'; leaseId: string };

const WORKER_TYPES = new Set(['hello', 'fetch', 'body', 'result']);
const MASTER_TYPES = new Set(['welcome', 'job', 'bodyEnd', 'ack', 'error', 'cancel']);

/** A cheap shape check at the trust boundary (the master does not trust worker input blindly). */
export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && WORKER_TYPES.has((m as { type?: string }).type ?? '');
}

export function isMasterMessage(m: unknown): m is MasterMessage {
  return typeof m === 'object' && m !== null && MASTER_TYPES.has((m as { type?: string }).type ?? '');
}
