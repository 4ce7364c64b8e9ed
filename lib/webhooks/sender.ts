/**
 * The one webhook sender of Sluice: delivery events, bounce notifications (core/http-bounce) and
 * new inbox mail all leave through it.
 *
 * - Each notification is a JSON POST with an event id (`X-Sluice-Event-Id`, stable across
 *   retries, for the receiver to de-duplicate), signed when a secret is set:
 *   `X-Sluice-Signature: sha256=<hex HMAC-SHA256 of "<X-Sluice-Timestamp>.<body>">`.
 * - A 2xx is delivered; anything else, or no answer within the timeout, is tried again after the
 *   next wait of its schedule, until maxAttempts; then it is given up, logged.
 * - Bounded: at most `concurrency` requests in flight; at most `maxPending` notifications kept
 *   (waiting, in flight, between tries). Past that the oldest one not in flight is dropped and
 *   never tried again (logged, a line per 10 s with the count).
 * - The outbox keeps what is pending: in memory, or in a store so that a restart forgets nothing
 *   (the inbox's webhooks). Every attempt is recorded in a bounded log the API shows.
 * - It never waits on the caller's path: `send` queues and returns.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { signBody } from './sign.js';

export interface WebhookEntry {
  /** the event id: stable across retries */
  id: string;
  url: string;
  /** what kind of notification, for logs and the attempt log ("message", "bounce", "delivery") */
  kind: string;
  body: string;
  /** tries so far */
  attempts: number;
  /** when the next try is due (ms) */
  nextAt: number;
  created: number;
}

/** Where pending notifications are kept between tries. */
export interface WebhookOutbox {
  /** what an earlier run left pending */
  load(): Promise<WebhookEntry[]>;
  save(entry: WebhookEntry): Promise<void>;
  remove(id: string): Promise<void>;
}

/** An outbox that keeps nothing beyond the process (a notification, not the record). */
export const memoryOutbox: WebhookOutbox = {
  load: async () => [],
  save: async () => undefined,
  remove: async () => undefined,
};

export interface SenderOptions {
  /** for log lines: "events", "core/http-bounce", "inbox" */
  name: string;
  secret?: string;
  timeoutMs: number;
  maxAttempts: number;
  /** the wait after the nth failed try (n from 1) */
  retryAfterMs: (attempt: number) => number;
  concurrency: number;
  maxPending: number;
  /** told of each dropped notification (metrics); the log line comes at most once a minute */
  onDrop?: () => void;
}

/** One try, as the attempt log keeps it. */
export interface AttemptRecord {
  id: string;
  kind: string;
  url: string;
  attempt: number;
  /** ISO time the try started */
  at: string;
  ms: number;
  status?: number;
  error?: string;
  /** what came of it */
  outcome: 'delivered' | 'retry' | 'given up';
}

/** Tries kept in the log. */
const LOG_SIZE = 1000;
const DROP_LOG_EVERY_MS = 10_000;

interface Item {
  entry: WebhookEntry;
  request?: AbortController;
  timer?: NodeJS.Timeout;
}

export class WebhookSender {
  /** every notification kept, oldest first (a Map keeps insertion order) */
  private readonly kept = new Map<string, Item>();
  private readonly ready: Item[] = [];
  private inFlight = 0;
  private stopped = false;
  private dropped = 0;
  private lastDropLog = 0;
  private readonly attempts: AttemptRecord[] = [];

  constructor(
    private readonly opts: SenderOptions,
    private readonly outbox: WebhookOutbox,
    private readonly logger: Logger,
  ) {}

  /** Picks up what the outbox kept from before (or `kept`, when the caller read it), each at its due time. */
  async start(kept?: WebhookEntry[]): Promise<void> {
    for (const entry of kept ?? (await this.outbox.load())) this.keep({ entry }, false);
  }

  /** Queues one notification; returns its event id. */
  send(url: string, kind: string, body: string): string {
    const now = Date.now();
    const entry: WebhookEntry = { id: randomUUID(), url, kind, body, attempts: 0, nextAt: now, created: now };
    this.keep({ entry }, true);
    return entry.id;
  }

  /** Notifications waiting or in flight. */
  get pending(): WebhookEntry[] {
    return [...this.kept.values()].map((i) => i.entry);
  }

  /** The latest tries, newest first. */
  recent(): AttemptRecord[] {
    return [...this.attempts].reverse();
  }

  stop(): void {
    this.stopped = true;
    for (const item of this.kept.values()) {
      clearTimeout(item.timer);
      item.request?.abort();
    }
  }

  private keep(item: Item, isNew: boolean): void {
    while (this.kept.size >= this.opts.maxPending) this.drop(this.oldestToDrop());
    this.kept.set(item.entry.id, item);
    if (isNew) this.persist(this.outbox.save(item.entry));
    this.schedule(item);
  }

  /** The oldest notification not in flight (a request under way is nearly done); else the oldest. */
  private oldestToDrop(): Item {
    for (const item of this.kept.values()) if (!item.request) return item;
    return this.kept.values().next().value!;
  }

  private drop(item: Item): void {
    this.kept.delete(item.entry.id);
    item.request?.abort();
    clearTimeout(item.timer);
    this.persist(this.outbox.remove(item.entry.id));
    this.dropped++;
    this.opts.onDrop?.();
    const now = Date.now();
    if (now - this.lastDropLog >= DROP_LOG_EVERY_MS) {
      this.logger.warn({ event: 'WEBHOOK_DROPPED', webhook: this.opts.name, dropped: this.dropped, pending: this.kept.size }, `${this.opts.name}: too many notifications waiting; ${this.dropped} dropped, the oldest first`);
      this.lastDropLog = now;
      this.dropped = 0;
    }
  }

  private schedule(item: Item): void {
    const wait = item.entry.nextAt - Date.now();
    if (wait <= 0) {
      this.ready.push(item);
      this.pump();
      return;
    }
    item.timer = setTimeout(() => {
      item.timer = undefined;
      this.ready.push(item);
      this.pump();
    }, wait);
    item.timer.unref();
  }

  private pump(): void {
    while (!this.stopped && this.inFlight < this.opts.concurrency && this.ready.length) {
      const item = this.ready.shift()!;
      if (this.kept.get(item.entry.id) !== item) continue; // dropped while it waited
      this.inFlight++;
      void this.post(item).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async post(item: Item): Promise<void> {
    const { entry } = item;
    entry.attempts++;
    const started = Date.now();
    const timestamp = String(Math.floor(started / 1000));
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Sluice',
      'x-sluice-event-id': entry.id,
      'x-sluice-timestamp': timestamp,
      'x-sluice-attempt': String(entry.attempts),
    };
    if (this.opts.secret) headers['x-sluice-signature'] = signBody(this.opts.secret, timestamp, entry.body);
    const request = (item.request = new AbortController());
    let status: number | undefined;
    let error: string | undefined;
    try {
      const signal = AbortSignal.any([request.signal, AbortSignal.timeout(this.opts.timeoutMs)]);
      const res = await fetch(entry.url, { method: 'POST', headers, body: entry.body, signal, redirect: 'error' });
      await res.body?.cancel();
      status = res.status;
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      error = (err as Error)?.message ?? String(err);
    } finally {
      item.request = undefined;
    }
    if (this.kept.get(entry.id) !== item || this.stopped) return; // dropped (and aborted) meanwhile
    const outcome = !error ? 'delivered' : entry.attempts >= this.opts.maxAttempts ? 'given up' : 'retry';
    this.record({ id: entry.id, kind: entry.kind, url: entry.url, attempt: entry.attempts, at: new Date(started).toISOString(), ms: Date.now() - started, ...(status !== undefined ? { status } : {}), ...(error ? { error } : {}), outcome });
    if (outcome !== 'retry') {
      this.kept.delete(entry.id);
      this.persist(this.outbox.remove(entry.id));
      if (outcome === 'given up') this.logger.warn({ event: 'WEBHOOK_FAILED', webhook: this.opts.name, id: entry.id, kind: entry.kind, attempts: entry.attempts, problem: error }, `${this.opts.name}: a notification was given up after ${entry.attempts} tries: ${error}`);
      return;
    }
    entry.nextAt = Date.now() + this.opts.retryAfterMs(entry.attempts);
    this.persist(this.outbox.save(entry));
    this.schedule(item);
  }

  private record(r: AttemptRecord): void {
    this.attempts.push(r);
    if (this.attempts.length > LOG_SIZE) this.attempts.shift();
  }

  /** An outbox write is bookkeeping: its failure is logged, and the notification goes on in memory. */
  private persist(write: Promise<void>): void {
    write.catch((err: unknown) => this.logger.warn({ err, webhook: this.opts.name }, `${this.opts.name}: keeping a notification in the outbox failed: ${(err as Error)?.message ?? err}`));
  }
}
