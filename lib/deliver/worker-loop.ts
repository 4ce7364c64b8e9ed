/**
 * The worker's loop: `connections` slots, each fetching a job from the master, delivering it and
 * reporting the result, until the channel closes or the worker is told to stop. A failure inside
 * a delivery is reported as a deferral, never a crash.
 *
 * Stopping waits for the deliveries in flight (and their reports), not for the fetches: a fetch
 * is a long poll that only ends when work comes, so waiting for it held every clean shutdown to
 * the master's kill deadline (10 s, then SIGKILL). A job handed out after the stop is not
 * started; the master takes it back when the channel closes.
 *
 * Every attempt has a deadline, delivery.attemptTimeout (shorter than the lease), and the master
 * may cancel it sooner when its lease expires: either way the attempt is aborted and reported.
 */
import type { Logger } from 'pino';
import type { ChannelClient } from '../channel/client.js';
import type { Job, RowResult } from '../channel/protocol.js';
import { aborted, cancelled, deliverJob, type DeliveryContext } from './deliver-job.js';
import { notifyResults, prepareDelivery } from '../plugins/worker-plugins.js';
import type { Delivery } from '../plugins/hooks.js';

export class WorkerLoop {
  private stopping = false;
  private readonly running: Promise<void>[] = [];
  /** deliveries in flight, each until its result is reported */
  private readonly active = new Set<Promise<void>>();
  /** the attempts in flight by lease id, so that the master can cancel one */
  private readonly attempts = new Map<string, AbortController>();
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

  /** Stops taking work; resolves when the deliveries in flight have been reported. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.allSettled([...this.active]);
  }

  /** The master cancels an attempt whose lease expired; an attempt already over is not here. */
  cancel(leaseId: string): void {
    this.attempts.get(leaseId)?.abort(new Error('its lease expired (queue.leaseTimeout) and the master cancelled it'));
  }

  private async slot(): Promise<void> {
    while (!this.stopping && !this.channel.isClosed) {
      let job: Job;
      try {
        job = await this.channel.fetch();
      } catch {
        return; // channel closed
      }
      if (this.stopping) return;
      const run = this.deliver(job);
      this.active.add(run);
      try {
        await run;
      } finally {
        this.active.delete(run);
      }
    }
  }

  /** Delivers one job and reports its result (a lost channel: the master hands it out again). */
  private async deliver(job: Job): Promise<void> {
    this.inFlight++;
    const startedMs = Date.now();
    let results: RowResult[];
    let keptSession = false;
    let delivery: Delivery | undefined;
    const control = new AbortController();
    this.attempts.set(job.leaseId, control);
    const limitMs = this.ctx.config.delivery.attemptTimeout;
    const deadline = setTimeout(() => control.abort(new Error(`it took longer than delivery.attemptTimeout (${limitMs} ms)`)), limitMs);
    try {
      // sender:fetch and sender:headers may change the envelope sender and the headers, or
      // refuse; the attempt's deadline covers them too (a hook left running is not waited for)
      const prepared = await Promise.race([prepareDelivery(this.ctx.hooks, job), aborted(control.signal)]);
      if ('aborted' in prepared) {
        results = cancelled(job, undefined, control.signal);
      } else if ('results' in prepared) {
        results = prepared.results;
      } else {
        delivery = prepared.delivery;
        ({ results, keptSession } = await deliverJob(prepared.job, this.ctx, delivery, control.signal));
      }
    } catch (err) {
      this.logger.error({ err, id: job.id }, 'delivery failed unexpectedly');
      results = job.rows.map((r) => ({ seq: r.seq, outcome: 'deferred', response: `local error: ${(err as Error).message}`, category: 'other' }));
    } finally {
      clearTimeout(deadline);
      this.attempts.delete(job.leaseId);
      this.inFlight--;
    }
    const durationMs = Date.now() - startedMs;
    results = results.map((r) => ({ ...r, durationMs }));
    await notifyResults(this.ctx.hooks, delivery, results);
    try {
      await this.channel.result(job.leaseId, results, keptSession);
    } catch {
      // the channel closed: the master releases the lease and the delivery runs again
    }
  }
}
