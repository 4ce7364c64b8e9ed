/**
 * New inbox mail pushed to a URL: one JSON POST per message and inbox, sent by Sluice's webhook
 * sender (lib/webhooks/sender.ts: signed, with an event id, retried along the configured
 * schedule), with the inbox store as its outbox, so a notification outlives a restart until it is
 * delivered or given up. The endpoint is the inbox domain's (inbound.webhook.domains) or else the
 * global one; an inbox with neither sends nothing. It runs after the parse, never on the SMTP
 * reply's path.
 *
 *   { "event": "message", "inbox": "…", "message": { …the listing line… } }
 */
import type { Logger } from 'pino';
import type { InboundConfig } from '../config/schema.js';
import { domainMatcher } from '../config/domains.js';
import { WebhookSender, type WebhookEntry, type WebhookOutbox } from '../webhooks/sender.js';
import { listedView } from './api/views.js';
import type { InboxEvent } from './events.js';
import type { SideRecords } from './store/side-records.js';

/** Requests in flight at once, per endpoint secret. */
const CONCURRENCY = 4;

interface Endpoint {
  url: string;
  secret?: string;
}

export class InboxWebhooks {
  /** one sender per secret (the sender signs), each with the store as its outbox */
  private readonly senders = new Map<string, WebhookSender>();
  private readonly byDomain: { matches: (domain: string) => boolean; endpoint: Endpoint }[];
  private readonly global: Endpoint | undefined;

  constructor(
    private readonly config: InboundConfig['webhook'],
    private readonly store: SideRecords,
    private readonly logger: Logger,
  ) {
    this.byDomain = Object.entries(config.domains).map(([domain, e]) => ({ matches: domainMatcher([domain]), endpoint: { url: e.url, secret: e.secret } }));
    this.global = config.url ? { url: config.url, secret: config.secret } : undefined;
  }

  get enabled(): boolean {
    return this.global !== undefined || this.byDomain.length > 0;
  }

  /** Starts the senders; what an earlier run left undelivered goes out again. */
  async start(): Promise<void> {
    const endpoints = [this.global, ...this.byDomain.map((d) => d.endpoint)].filter((e): e is Endpoint => e !== undefined);
    const pending = await this.store.webhooks();
    // each kept notification goes back to the sender of its endpoint; one whose URL is no longer
    // configured has nowhere to go
    for (const entry of pending) {
      if (endpoints.some((e) => e.url === entry.url)) continue;
      await this.store.setWebhook(entry.id, undefined);
      this.logger.warn({ event: 'WEBHOOK_FAILED', webhook: 'inbox webhook', id: entry.id, url: entry.url }, `an inbox notification for ${entry.url} was dropped: that URL is no longer configured`);
    }
    for (const endpoint of endpoints) this.senderFor(endpoint);
    for (const [secret, sender] of this.senders) {
      await sender.start(pending.filter((e) => endpoints.some((x) => x.url === e.url && (x.secret ?? '') === secret)));
    }
  }

  stop(): void {
    for (const sender of this.senders.values()) sender.stop();
  }

  /** Queues the notification of one stored message for one of its inboxes. */
  notify(event: InboxEvent): void {
    const endpoint = this.endpointFor(event.inbox);
    if (!endpoint) return;
    const body = JSON.stringify({ event: 'message', inbox: event.inbox, message: listedView(event.inbox, event) });
    this.senderFor(endpoint).send(endpoint.url, 'message', body);
  }

  /** Every sender's pending notifications and latest tries, for GET /api/webhooks/deliveries. */
  deliveries(): { pending: Omit<WebhookEntry, 'body'>[]; recent: ReturnType<WebhookSender['recent']> } {
    const senders = [...this.senders.values()];
    return {
      pending: senders.flatMap((s) => s.pending).map(({ body: _body, ...rest }) => rest),
      recent: senders.flatMap((s) => s.recent()).sort((a, b) => b.at.localeCompare(a.at)),
    };
  }

  private endpointFor(inbox: string): Endpoint | undefined {
    const domain = inbox.slice(inbox.lastIndexOf('@') + 1);
    return this.byDomain.find((d) => d.matches(domain))?.endpoint ?? this.global;
  }

  private senderFor(endpoint: Endpoint): WebhookSender {
    const key = endpoint.secret ?? '';
    let sender = this.senders.get(key);
    if (!sender) {
      const schedule = this.config.retrySchedule;
      sender = new WebhookSender(
        {
          name: 'inbox webhook',
          secret: endpoint.secret,
          timeoutMs: this.config.timeout,
          maxAttempts: schedule.length + 1,
          retryAfterMs: (n) => schedule[Math.min(n, schedule.length) - 1] ?? 0,
          concurrency: CONCURRENCY,
          maxPending: this.config.maxPending,
        },
        this.outbox(),
        this.logger,
      );
      this.senders.set(key, sender);
    }
    return sender;
  }

  /** The inbox store as a sender's outbox (the pending ones are handed to start() already split). */
  private outbox(): WebhookOutbox {
    return {
      load: async () => [],
      save: (entry) => this.store.setWebhook(entry.id, entry),
      remove: (id) => this.store.setWebhook(id, undefined),
    };
  }
}
