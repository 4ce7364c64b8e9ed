/**
 * What the data channel asks of the master, in one place: a hello is checked against the
 * credentials the supervisor gave the worker, a worker's fetch goes to the scheduler,
 * a body chunk comes from memory (FreshBodies) or the store, a report is settled under its lease
 * and recorded by Outcomes, and a closed connection gives back everything its worker held.
 *
 * Invariant: a report is recorded only under the lease it names, while that lease is held by the
 * reporting connection (Scheduler.settle); once recorded, the body is no longer kept in memory
 * (a retry reads it from disk). A job never reaches a worker with a row for a suppressed
 * recipient (suppression.ts): such rows are dropped under the job's lease before it is sent, and
 * the rest of the job goes out under a new lease.
 */
import type { Logger } from 'pino';
import type { ChannelHandlers, ChannelPeer } from '../channel/server.js';
import type { Job, RowResult } from '../channel/protocol.js';
import type { FreshBodies } from './fresh-bodies.js';
import type { Outcomes } from './outcomes.js';
import type { Scheduler } from './scheduler.js';
import type { QueueStore } from './store.js';
import type { SuppressionList } from './suppression.js';

/** After a failed drop of suppressed rows, the wait before the worker's fetch goes on. */
const DROP_RETRY_MS = 1000;

export interface DispatchDeps {
  store: QueueStore;
  scheduler: Scheduler;
  outcomes: Outcomes;
  fresh: FreshBodies;
  logger: Logger;
  /** the secret and zone a worker was forked with (the supervisor knows) */
  credentials: ChannelHandlers['credentials'];
  /** told of every fetch and report: a zone's workers are at work (readiness) */
  attempted?: (zone: string) => void;
  /** recipients that get no mail */
  suppression?: SuppressionList;
}

export class Dispatch implements ChannelHandlers {
  /** workers replaced by a reload: they finish their deliveries and get no new one */
  private readonly retired = new Set<string>();
  /** each connected worker's channel connection (its lease owner), learnt from its fetches */
  private readonly owners = new Map<string, string>();

  constructor(private readonly deps: DispatchDeps) {}

  /** Hands `workerId` no more work, from now on (Supervisor.reload). */
  retire(workerId: string): void {
    this.retired.add(workerId);
    const owner = this.owners.get(workerId);
    if (owner) this.deps.scheduler.withdraw(owner);
  }

  credentials(workerId: string): { secret: string; zone: string } | undefined {
    return this.deps.credentials(workerId);
  }

  fetch(peer: ChannelPeer): Promise<Job> {
    // a retired worker's fetch stays unanswered: its channel closes when it has finished
    if (this.retired.has(peer.workerId)) return new Promise<Job>(() => undefined);
    this.owners.set(peer.workerId, peer.owner);
    return this.nextJob(peer).then((job) => {
      this.deps.attempted?.(peer.zone);
      return job;
    });
  }

  /** The next job for the worker, less the rows of suppressed recipients (dropped here). */
  private async nextJob(peer: ChannelPeer): Promise<Job> {
    const { scheduler, suppression, outcomes, logger } = this.deps;
    for (;;) {
      const job = await scheduler.fetch(peer.owner, peer.zone);
      const seqs = new Set(suppression?.size ? job.rows.filter((r) => suppression.test(r.recipient)).map((r) => r.seq) : []);
      if (!seqs.size) return job;
      try {
        // the rows left go out under a new lease: they are due now
        await scheduler.settle(job.leaseId, peer.owner, async (lease) => {
          await outcomes.drop(lease, seqs, 'suppressed');
          // the rows left are read from disk by their next job, the body too
          this.deps.fresh.drop(lease.id);
          return seqs.size < lease.rows.length ? Date.now() : undefined;
        });
      } catch (err) {
        logger.error({ err, id: job.id }, `dropping suppressed rows of ${job.id} failed; they are tried again in ${DROP_RETRY_MS} ms`);
        await new Promise((resolve) => setTimeout(resolve, DROP_RETRY_MS));
      }
    }
  }

  readChunk(id: string, n: number): Promise<Buffer | undefined> {
    const chunk = this.deps.fresh.chunk(id, n);
    return chunk ? Promise.resolve(chunk) : this.deps.store.readChunk(id, n);
  }

  /** The whole body, when it is still in memory: it goes out with the job. */
  prefetch(job: Job): readonly Buffer[] | undefined {
    return this.deps.fresh.whole(job.id, job.chunks);
  }

  /** A report for a lease that expired or belongs to another connection changes nothing. */
  result(peer: ChannelPeer, leaseId: string, results: RowResult[], keptSession: boolean): Promise<void> {
    const { scheduler, outcomes, fresh } = this.deps;
    this.deps.attempted?.(peer.zone);
    return scheduler.settle(
      leaseId,
      peer.owner,
      (lease) => {
        // the first attempt is over: a retry reads the body from disk
        fresh.drop(lease.id);
        return outcomes.apply(lease, results);
      },
      keptSession,
    );
  }

  closed(peer: ChannelPeer): void {
    this.retired.delete(peer.workerId);
    if (this.owners.get(peer.workerId) === peer.owner) this.owners.delete(peer.workerId);
    const ids = this.deps.scheduler.releaseOwner(peer.owner);
    if (ids.length) this.deps.logger.warn({ event: 'LEASES_RELEASED', workerId: peer.workerId, leases: ids.length, ids: ids.slice(0, 100) }, `worker ${peer.workerId} left; ${ids.length} deliveries are due again`);
  }
}
