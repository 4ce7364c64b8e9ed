/**
 * The worker's loop: `connections` slots, each fetching a job from the master, delivering it and
 * reporting the result, until the channel closes or the worker is told to stop. A failure inside
 * a delivery is reported as a deferral, never a crash.
 */
import type { Logger } from 'pino';
import type { ChannelClient } from '../channel/client.js';
import type { Job, RowResult } from '../channel/protocol.js';
import { deliverJob, type DeliveryContext } from './deliver-job.js';

export class WorkerLoop {
  private stopping = false;
  private readonly running: Promise<void>[] = [];
  inFlight = 0;

  constructor(
    private readonly channel: ChannelClient,
    private readonly ctx: DeliveryContext,
    private readonly slots: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (let i = 0; i < this.slots; i++) this.running.push(this.slot());
  }

  /** Stops fetching; resolves when the deliveries in flight have been reported. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled(this.running);
  }

  private async slot(): Promise<void> {
    while (!this.stopping && !this.channel.isClosed) {
      let job: Job;
      try {
        job = await this.channel.fetch();
      } catch {
        return; // channel closed
      }
      this.inFlight++;
      const startedMs = Date.now();
      let results: RowResult[];
      let keptSession = false;
      try {
        ({ results, keptSession } = await deliverJob(job, this.ctx));
      } catch (err) {
        this.logger.error({ err, id: job.id }, 'delivery failed unexpectedly');
        results = job.rows.map((r) => ({ seq: r.seq, outcome: 'deferred', response: `local error: ${(err as Error).message}`, category: 'other' }));
      } finally {
        this.inFlight--;
      }
      const durationMs = Date.now() - startedMs;
      results = results.map((r) => ({ ...r, durationMs }));
      try {
        await this.channel.result(job.leaseId, results, keptSession);
      } catch {
        return; // the master will hand the job out again
      }
    }
  }
}
