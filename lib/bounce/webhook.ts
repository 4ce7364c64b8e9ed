/**
 * Delivery events pushed to an HTTP endpoint: one POST per recipient outcome (delivered,
 * deferred, bounced), JSON, signed with HMAC-SHA256 so the receiver can trust it, retried with
 * growing waits when the endpoint fails. ZoneMTA users asked for this push for years.
 *
 * The outbox is in memory and bounded: events are a notification, not the record (the log and
 * the queue are). When the endpoint is down for long, the oldest events are dropped, logged.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { FinishedRow, OutcomeListener } from '../queue/outcomes.js';
import type { MessageMeta } from '../queue/types.js';

export interface WebhookOptions {
  url: string;
  secret?: string;
  timeoutMs: number;
  maxAttempts: number;
  maxPending: number;
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

/** The signature header value: sha256 HMAC over "<timestamp>.<body>". */
export function signEvent(secret: string, timestamp: string, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export class EventWebhook implements OutcomeListener {
  private readonly outbox: { body: string; attempts: number }[] = [];
  private sending = 0;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly opts: WebhookOptions,
    private readonly logger: Logger,
  ) {}

  delivered(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('delivered', meta, rows);
  }
  deferred(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('deferred', meta, rows);
  }
  bounced(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.enqueue('bounced', meta, rows);
  }
  async delayed(): Promise<void> {
    // a delay notice is not a delivery event; the deferral itself was sent
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
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
      if (this.outbox.length >= this.opts.maxPending) {
        const dropped = this.outbox.shift();
        this.logger.warn({ event: 'WEBHOOK_DROPPED', pending: this.outbox.length }, `webhook outbox full; dropped an event (${dropped?.body.slice(0, 80)})`);
      }
      this.outbox.push({ body: JSON.stringify(e), attempts: 0 });
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.sending < 4 && this.outbox.length) {
      const item = this.outbox.shift()!;
      this.sending++;
      void this.post(item).finally(() => {
        this.sending--;
        this.pump();
      });
    }
  }

  private async post(item: { body: string; attempts: number }): Promise<void> {
    item.attempts++;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-sluice-timestamp': timestamp, 'user-agent': 'Sluice' };
    if (this.opts.secret) headers['x-sluice-signature'] = signEvent(this.opts.secret, timestamp, item.body);
    let problem: string | undefined;
    try {
      const res = await fetch(this.opts.url, { method: 'POST', headers, body: item.body, signal: AbortSignal.timeout(this.opts.timeoutMs), redirect: 'error' });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status >= 200 && res.status < 300) return;
      problem = `HTTP ${res.status}`;
    } catch (err) {
      problem = (err as Error).message;
    }
    if (item.attempts >= this.opts.maxAttempts || this.stopped) {
      this.logger.warn({ event: 'WEBHOOK_FAILED', attempts: item.attempts, problem }, `webhook gave up after ${item.attempts} attempts: ${problem}`);
      return;
    }
    // 1 s, 4 s, 9 s, … like a square law: quick for a blip, patient for an outage
    const waitMs = 1000 * item.attempts * item.attempts;
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.outbox.unshift(item);
      this.pump();
    }, waitMs);
    t.unref();
    this.timers.add(t);
  }
}
