/**
 * Delivery events pushed to an HTTP endpoint: one POST per recipient outcome (delivered,
 * deferred, bounced), JSON, signed with HMAC-SHA256 so the receiver can trust it, retried with
 * growing waits when the endpoint fails. ZoneMTA users asked for this push for years.
 *
 * The outbox is in memory and bounded: events are a notification, not the record (the log and
 * the queue are). When the endpoint is down for long, the oldest events are dropped, logged.
 * Sending, signing and retrying are the shared webhook sender's (lib/webhooks/sender.ts).
 */
import type { Logger } from 'pino';
import type { FinishedRow, OutcomeListener } from '../queue/outcomes.js';
import type { MessageMeta } from '../queue/types.js';
import { memoryOutbox, WebhookSender } from '../webhooks/sender.js';

/** Event requests in flight at once. */
const EVENT_CONCURRENCY = 4;

export interface WebhookOptions {
  url: string;
  secret?: string;
  timeoutMs: number;
  maxAttempts: number;
  maxPending: number;
  onDrop?: () => void;
}

export interface DeliveryEvent {
  event: 'delivered' | 'deferred' | 'bounced';
  id: string;
  seq: number;
  messageId: string;
  from: string;
  recipient: string;
  zone: string;
  attempts: number;
  response: string;
  status?: string;
  category?: string;
  mx?: string;
  time: string;
  nextAttempt?: string;
}

/**
 * The outcome stage's listener: each finished row becomes one event, sent by the shared webhook
 * sender with an in-memory outbox (events are a notification: the log and the queue are the
 * record). Waits between tries: 1 s, 4 s, 9 s … (a square law: quick for a blip, patient for an
 * outage).
 */
export class EventWebhook implements OutcomeListener {
  private readonly sender: WebhookSender;

  constructor(
    private readonly opts: WebhookOptions,
    logger: Logger,
  ) {
    this.sender = new WebhookSender(
      { name: 'events', secret: opts.secret, timeoutMs: opts.timeoutMs, maxAttempts: opts.maxAttempts, retryAfterMs: (n) => 1000 * n * n, concurrency: EVENT_CONCURRENCY, maxPending: opts.maxPending, onDrop: opts.onDrop },
      memoryOutbox,
      logger,
    );
  }

  delivered(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('delivered', meta, rows);
  }
  deferred(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('deferred', meta, rows);
  }
  bounced(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('bounced', meta, rows);
  }

  stop(): void {
    this.sender.stop();
  }

  private async enqueue(event: DeliveryEvent['event'], meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    for (const { row, result } of rows) {
      const e: DeliveryEvent = {
        event,
        id: row.id,
        seq: row.seq,
        messageId: meta.messageId,
        from: meta.from,
        recipient: row.recipient,
        zone: row.zone,
        attempts: row.attempts + (event === 'deferred' ? 0 : 1),
        response: result.response,
        status: result.status,
        category: result.category,
        mx: result.mx,
        time: new Date().toISOString(),
        ...(event === 'deferred' ? { nextAttempt: new Date(row.due).toISOString() } : {}),
      };
      this.sender.send(this.opts.url, event, JSON.stringify(e));
    }
  }
}
