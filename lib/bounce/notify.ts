/**
 * Turns finished deliveries into notices for the sender: a DSN for bounced recipients, one
 * "delayed" DSN when a delivery has waited past delayWarning. DSNs go through the one ingest path
 * with the null sender, so they are queued, routed and delivered like any other mail, and can
 * never bounce again (nothing bounces to <>).
 *
 * Before a DSN is made, the queue:bounce hook is told about each bounced recipient (ZoneMTA's
 * `bounce` object); a handler may set `bounce.dsn = false` to send none for that recipient. A
 * failing handler is logged and changes nothing: the DSN still goes.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Ingest } from '../accept/ingest.js';
import { logEvent } from '../log/logger.js';
import { parseHeaders } from '../message/headers.js';
import type { BounceInfo } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { FinishedRow, OutcomeListener } from '../queue/outcomes.js';
import type { MessageMeta } from '../queue/types.js';
import { buildDsn, mayBounceTo, type DsnRecipient } from './dsn.js';

export class BounceNotifier implements OutcomeListener {
  constructor(
    private readonly config: Config,
    private readonly ingest: Ingest,
    private readonly logger: Logger,
    private readonly hooks?: HookRunner,
  ) {}

  async bounced(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.send(meta, await this.runBounceHooks(meta, rows), 'failed');
  }

  delayed(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.send(meta, rows, 'delayed');
  }

  /** Runs queue:bounce for each row; returns the rows that still get a DSN. */
  private async runBounceHooks(meta: MessageMeta, rows: FinishedRow[]): Promise<FinishedRow[]> {
    const hooks = this.hooks;
    if (!hooks?.has('queue:bounce')) return rows;
    const mayBounce = mayBounceTo({ sender: meta.from, originalHeaders: meta.headers });
    const keep: FinishedRow[] = [];
    for (const finished of rows) {
      const { row, result } = finished;
      const bounce: BounceInfo = {
        id: row.id,
        seq: row.seq,
        zone: row.zone,
        from: meta.from,
        to: row.recipient,
        messageId: meta.messageId,
        headers: parseHeaders(Buffer.from(meta.headers, 'latin1')),
        response: result.response,
        responseCode: result.responseCode,
        status: result.status,
        category: result.category,
        mx: result.mx,
        attempts: row.attempts + 1,
        time: Date.now(),
        dsn: mayBounce,
      };
      await hooks.notify('queue:bounce', bounce);
      if (bounce.dsn || !mayBounce) keep.push(finished);
      else logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, recipient: row.recipient, reason: 'no bounce: a queue:bounce hook suppressed the DSN' });
    }
    return keep;
  }

  private async send(meta: MessageMeta, rows: FinishedRow[], action: 'failed' | 'delayed'): Promise<void> {
    if (!rows.length) return;
    if (!mayBounceTo({ sender: meta.from, originalHeaders: meta.headers })) {
      for (const { row } of rows) {
        logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, recipient: row.recipient, reason: `no ${action === 'failed' ? 'bounce' : 'delay notice'}: null sender, auto-submitted or report mail` });
      }
      return;
    }
    const recipients: DsnRecipient[] = rows.map(({ row, result }) => ({
      recipient: row.recipient,
      action,
      status: result.status ?? (action === 'failed' ? '5.0.0' : '4.0.0'),
      remoteMta: result.mx,
      diagnostic: result.response,
      lastAttempt: row.lastAttempt ?? Date.now(),
      ...(action === 'delayed' ? { willRetryUntil: row.created + this.config.queue.maxQueueTime } : {}),
    }));
    const dsn = buildDsn({
      reportingMta: this.config.hostname,
      queueId: meta.id,
      arrivalDate: meta.created,
      sender: meta.from,
      originalHeaders: meta.headers,
      recipients,
    });
    const result = await this.ingest.ingest({
      from: '',
      to: dsn.to,
      origin: { via: 'bounce', transmissionType: 'DSN' },
      source: [dsn.message],
      maxSizeBytes: Math.max(dsn.message.length + 1, this.config.smtp.maxSize),
      hideClientInfo: true,
    });
    this.logger.info({ event: action === 'failed' ? 'BOUNCE_QUEUED' : 'DELAY_NOTICE_QUEUED', id: meta.id, dsn: result.id, to: meta.from }, `${action === 'failed' ? 'bounce' : 'delay notice'} for ${meta.id} queued as ${result.id}`);
  }
}
