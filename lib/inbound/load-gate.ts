/**
 * The receiver's global load gate (Haraka's toobusy, Mailsac's "queue then 421"): while the event
 * loop lags more than maxEventLoopDelay, or more store writes than maxPendingWrites are waiting
 * for the disk, a new connection waits (before its greeting) for the load to fall; after loadWait
 * it gets 421 4.3.2 and the server has spent nothing more on it. Sessions already running go on.
 *
 * The lag is the 99th percentile of the event loop's delay over the last sampling period
 * (perf_hooks' monitorEventLoopDelay), so one slow tick does not close the gate.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

const SAMPLE_MS = 250;
const POLL_MS = 50;

export interface LoadGateOptions {
  maxEventLoopDelayMs: number;
  maxPendingWrites: number;
  waitMs: number;
  /** store writes waiting for the disk now */
  pendingWrites: () => number;
}

export class LoadGate {
  private histogram: IntervalHistogram | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** the lag measured over the last period, ms */
  lagMs = 0;
  /** connections that waited and were refused, for metrics */
  refused = 0;

  constructor(private readonly opts: LoadGateOptions) {}

  start(): void {
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => {
      const h = this.histogram!;
      this.lagMs = h.count ? h.percentile(99) / 1e6 : 0;
      h.reset();
    }, SAMPLE_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram?.disable();
  }

  get overloaded(): boolean {
    return this.lagMs > this.opts.maxEventLoopDelayMs || this.opts.pendingWrites() > this.opts.maxPendingWrites;
  }

  /** Resolves true once there is room, false when loadWait passed first. */
  async admit(): Promise<boolean> {
    if (!this.overloaded) return true;
    const until = Date.now() + this.opts.waitMs;
    while (Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      if (!this.overloaded) return true;
    }
    this.refused++;
    return false;
  }
}
