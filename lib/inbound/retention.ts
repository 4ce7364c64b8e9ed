/**
 * Keeps the inbox store within its limits: messages older than `ttl` go; an inbox keeps its
 * newest `maxPerInbox`; all mail together stays under `maxStoreSize` (the oldest go first); raw
 * chunks left by receipts that never finished are collected. Everything of a message goes with it
 * (raw bytes, parse, attachments).
 *
 * The sweep runs often (a quarter of the TTL, at most every 5 s) and costs one index seek when
 * there is nothing to do; inboxes are trimmed only after they received mail. Reads apply the TTL
 * and the cap themselves (inbox.ts), so what the sweeper has not reached yet is never served.
 *
 * The size limit has its own eviction, started as soon as a receipt takes the store over it, run
 * beside a sweep rather than behind it: past the limit by a tenth new mail is refused (452), so a
 * full store under a flood must make room as fast as mail comes in, which one removal at a time
 * behind the trimming of thousands of inboxes did not (each removal waits for LevelDB's threads,
 * busy with the synced commits of the receipts). It removes the oldest messages a few at a time
 * until the store is under the limit by a margin, so it does not run again for every message.
 */
import type { Logger } from 'pino';
import type { InboundConfig } from '../config/schema.js';
import type { InboxStore } from './store/inbox-store.js';

const MAX_SWEEP_MS = 5000;
const MIN_SWEEP_MS = 250;
/** The size eviction stops this far under the limit (a twentieth of it). */
const SIZE_LOW_WATER = 0.95;
/** Messages past an inbox's cap removed in one batch. */
const EVICT_BATCH = 64;
/** Removals the size eviction keeps in flight at once. */
const EVICT_CONCURRENCY = 16;
/** Leftovers of interrupted receipts: looked for this often, taken when this old. */
const LEFTOVER_EVERY_MS = 10 * 60 * 1000;
const LEFTOVER_GRACE_MS = 60 * 60 * 1000;

export class Retention {
  /** inboxes that received mail since the last sweep (they may be over their cap) */
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private evicting: Promise<void> | undefined;
  private stopped = false;
  private lastLeftovers = Date.now();
  /** messages removed so far, by reason (metrics) */
  readonly evicted = { ttl: 0, cap: 0, size: 0 };

  constructor(
    private readonly store: InboxStore,
    private readonly config: InboundConfig,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const every = Math.min(MAX_SWEEP_MS, Math.max(MIN_SWEEP_MS, Math.floor(this.config.ttl / 4)));
    this.timer = setInterval(() => void this.sweep(), every);
    this.timer.unref();
  }

  /** Stops sweeping; resolves once a sweep or eviction under way has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all([this.sweeping, this.evicting]);
  }

  /** These inboxes just received a message. */
  touched(inboxes: readonly string[]): void {
    for (const inbox of inboxes) this.dirty.add(inbox);
    if (this.store.totalBytes > this.config.maxStoreSize) void this.trimToSize();
  }

  /** Removes the oldest messages until the store is within its size; one run at a time. */
  trimToSize(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.evicting ??= this.evictOldest()
      .catch((err: unknown) => this.logger.warn({ err }, `inbox size eviction failed: ${(err as Error)?.message ?? err}`))
      .finally(() => (this.evicting = undefined));
    return this.evicting;
  }

  private async evictOldest(): Promise<void> {
    if (!this.store.writable || this.store.totalBytes <= this.config.maxStoreSize) return;
    const target = this.config.maxStoreSize * SIZE_LOW_WATER;
    const running = new Set<Promise<void>>();
    let failure: unknown;
    for await (const id of this.store.allIds()) {
      if (this.stopped || failure || this.store.totalBytes <= target) break;
      const removal: Promise<void> = this.store.remove(id, false).then(
        (removed) => {
          if (removed) this.evicted.size++;
          running.delete(removal);
        },
        (err: unknown) => {
          failure ??= err;
          running.delete(removal);
        },
      );
      running.add(removal);
      if (running.size >= EVICT_CONCURRENCY) await Promise.race(running);
    }
    await Promise.all(running);
    if (failure) throw failure;
  }

  /** One pass; a pass already running is waited for instead. */
  sweep(nowMs = Date.now()): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.sweeping ??= this.pass(nowMs)
      .catch((err: unknown) => this.logger.warn({ err }, `inbox retention sweep failed: ${(err as Error)?.message ?? err}`))
      .finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async pass(nowMs: number): Promise<void> {
    if (!this.store.writable) return;
    // removals here are not synced: one lost in a crash is simply done again by the next sweep
    for await (const id of this.store.arrivedBefore(nowMs - this.config.ttl)) {
      if (this.stopped) return;
      if (await this.store.remove(id, false)) this.evicted.ttl++;
    }
    const inboxes = [...this.dirty];
    this.dirty.clear();
    for (const inbox of inboxes) {
      if (this.stopped) return;
      const beyond = await this.store.beyond(inbox, this.config.maxPerInbox);
      for (let at = 0; at < beyond.length; at += EVICT_BATCH) {
        if (this.stopped) return;
        this.evicted.cap += await this.store.removeManyFromInbox(inbox, beyond.slice(at, at + EVICT_BATCH));
      }
    }
    await this.trimToSize();
    if (nowMs - this.lastLeftovers >= LEFTOVER_EVERY_MS) {
      this.lastLeftovers = nowMs;
      const n = await this.store.collectLeftovers(nowMs, LEFTOVER_GRACE_MS);
      if (n) this.logger.info({ messages: n }, `collected the leftovers of ${n} unfinished inbound receipts`);
    }
  }
}
