/**
 * The messages waiting to be parsed, worked off a few at a time beside the SMTP traffic (the 250
 * never waits for a parse). A reader that needs one message now (the API, right after the 250)
 * moves it to the front and waits for it alone: `ensure`. Background parses hold back while the
 * intake is busy, within the bounds of pacing.ts; parses someone waits for never do.
 *
 * Each id is parsed by at most one task at a time. A parse that fails (the store could not take
 * the attachments) is tried again a little later, a few times; its "parse me" mark stays in the
 * store, so a restart tries again too. One that failed because the store was being reopened is
 * tried again until the store is back.
 */
import type { Logger } from 'pino';
import { isStoreUnavailable } from '../../store/write-guard.js';
import { QUIET_MS, type PacingLimits } from './pacing.js';

const RETRIES = 3;
const RETRY_AFTER_MS = 2000;

export interface ParsePacing extends PacingLimits {
  /** true while background parses should wait (the SMTP intake is receiving) */
  busy: () => boolean;
}

export class ParseQueue {
  /** ids in the order they will be parsed, with when each was added; a Map keeps insertion order */
  private readonly waiting = new Map<string, number>();
  /** ids someone waits for: parsed before the rest, whatever the intake does */
  private readonly urgent = new Set<string>();
  /** wakes the pump when held-back parses may run (the intake went quiet, or the bound is hit) */
  private recheck: NodeJS.Timeout | undefined;
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly failures = new Map<string, number>();
  /** ids waiting to be tried again after a failure, with the timer that will add them back */
  private readonly retrying = new Map<string, NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly work: (id: string) => Promise<void>,
    private readonly concurrency: number,
    private readonly logger: Logger,
    private readonly pacing?: ParsePacing,
  ) {}

  /** Messages waiting or being parsed. */
  get backlog(): number {
    return this.waiting.size + this.running.size;
  }

  add(id: string): void {
    if (this.stopped || this.running.has(id)) return;
    if (!this.waiting.has(id)) this.waiting.set(id, Date.now());
    this.pump();
  }

  /** Resolves once `id` is parsed (or given up on); it goes before everything else waiting. */
  ensure(id: string): Promise<void> {
    const running = this.running.get(id);
    if (running) return running;
    // a reader does not wait out a retry's pause: the message is tried again now
    const retry = this.retrying.get(id);
    if (retry && !this.stopped) {
      clearTimeout(retry);
      this.retrying.delete(id);
      this.waiting.set(id, Date.now());
    }
    if (!this.waiting.has(id) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
      this.urgent.add(id);
      this.pump();
    });
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency) {
      const id = this.nextId();
      if (id === undefined) return;
      this.waiting.delete(id);
      this.urgent.delete(id);
      const task = this.run(id);
      this.running.set(id, task);
      void task.finally(() => {
        this.running.delete(id);
        for (const resolve of this.waiters.get(id) ?? []) resolve();
        this.waiters.delete(id);
        this.pump();
      });
    }
  }

  /** The id to parse next: one someone waits for, else the oldest unless it should hold back. */
  private nextId(): string | undefined {
    for (const id of this.urgent) {
      if (this.waiting.has(id)) return id;
      this.urgent.delete(id);
    }
    const first = this.waiting.entries().next();
    if (first.done) return undefined;
    const [id, addedMs] = first.value;
    const p = this.pacing;
    if (!p || this.waiting.size > p.maxDeferred || Date.now() - addedMs >= p.maxDeferMs || !p.busy()) return id;
    this.recheck ??= setTimeout(() => {
      this.recheck = undefined;
      this.pump();
    }, QUIET_MS);
    this.recheck.unref();
    return undefined;
  }

  private async run(id: string): Promise<void> {
    try {
      await this.work(id);
      this.failures.delete(id);
    } catch (err) {
      // the store reopening after a failed write is no fault of the message: tried again, uncounted,
      // however long the store takes to come back
      const transient = isStoreUnavailable(err);
      const failures = (this.failures.get(id) ?? 0) + (transient ? 0 : 1);
      if (!transient) this.logger.warn({ event: 'PARSE_FAILED', err, id, failures }, `parsing inbound message ${id} failed${failures < RETRIES ? '; trying again shortly' : '; it stays unparsed until the next start'}`);
      if (failures >= RETRIES || this.stopped) {
        this.failures.delete(id);
        return;
      }
      this.failures.set(id, failures);
      const timer = setTimeout(() => {
        this.retrying.delete(id);
        this.add(id);
      }, RETRY_AFTER_MS);
      timer.unref();
      this.retrying.set(id, timer);
    }
  }

  /** Takes nothing new and waits for the parses running now. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.retrying.values()) clearTimeout(t);
    this.retrying.clear();
    clearTimeout(this.recheck);
    this.waiting.clear();
    this.urgent.clear();
    await Promise.allSettled([...this.running.values()]);
    for (const list of this.waiters.values()) for (const resolve of list) resolve();
    this.waiters.clear();
  }
}
