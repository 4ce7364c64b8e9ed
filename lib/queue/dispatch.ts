/**
 * What the data channel asks of the master, in one place: a hello is checked against the
 * credentials the supervisor gave the worker, a worker's fetch goes to the scheduler,
 * a body chunk comes from memory (FreshBodies) or the store, a report is settled under its lease
 * and recorded by Outcomes, and a closed connection gives back everything its worker held.
 *
 * Invariant: a report is recorded only under the lease it names, while that lease is held by the
 * reporting connection (Scheduler.settle); once recorded, the body is no longer kept in memory
 * (a retry reads it from disk).
 */
import type { Logger } from 'pino';
import type { ChannelHandlers, ChannelPeer } from '../channel/server.js';
import type { Job, RowResult } from '../channel/protocol.js';
import type { FreshBodies } from './fresh-bodies.js';
import type { Outcomes } from './outcomes.js';
import type { Scheduler } from './scheduler.js';
import type { QueueStore } from './store.js';

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
    return this.deps.scheduler.fetch(peer.owner, peer.zone).then((job) => {
      this.deps.attempted?.(peer.zone);
      return job;
    });
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
