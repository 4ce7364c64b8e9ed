/**
 * What a worker is handed for a lease: one message to one domain, with what the attempt needs
 * (the stored header block, the body's size, chunk count and DKIM body hash) and the rows'
 * history (attempts, last category) for the worker's hooks and logs.
 */
import type { Job } from '../channel/protocol.js';
import type { Lease } from './leases.js';

export function jobOf({ leaseId, zone, domain, meta, rows }: Lease): Job {
  return {
    leaseId,
    id: meta.id,
    zone,
    domain,
    from: meta.from,
    rows: rows.map((r) => ({ seq: r.seq, recipient: r.recipient })),
    headers: meta.headers,
    bodyHash: meta.bodyHash,
    size: meta.size,
    chunks: meta.chunks,
    messageId: meta.messageId,
    created: meta.created,
    attempts: Math.max(...rows.map((r) => r.attempts)),
    lastCategory: rows.find((r) => r.category)?.category,
  };
}
