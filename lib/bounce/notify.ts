/**
 * Turns finished deliveries into notices for the sender: a DSN for bounced recipients, one
 * "delayed" DSN when a delivery has waited past delayWarning, and a success DSN (Action:
 * relayed) for a delivered recipient whose RCPT asked for one. DSNs go through the one ingest
 * path with the null sender, so they are queued, routed and delivered like any other mail, and
 * can never bounce again (nothing bounces to <>).
 *
 * Each recipient's NOTIFY (RFC 3461) decides which notices it gets: none for NEVER, and only the
 * kinds it lists otherwise; without NOTIFY, failures and delays. ENVID and ORCPT go into the
 * report (Original-Envelope-Id, Original-Recipient). We return the original's headers only,
 * whatever RET asked (RFC 3461 lets an MTA return headers only).
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
import type { DeliveryRow, MessageMeta } from '../queue/types.js';
import { buildDsn, mayBounceTo, type DsnRecipient } from './dsn.js';

type Action = DsnRecipient['action'];

/** Whether a recipient's NOTIFY asks for this kind of notice (without NOTIFY: failures and delays). */
export function wantsNotice(row: DeliveryRow, kind: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  return row.notify ? row.notify.includes(kind) : kind !== 'SUCCESS';
}

const NOTICE_EVENT = { failed: 'BOUNCE_QUEUED', delayed: 'DELAY_NOTICE_QUEUED', relayed: 'SUCCESS_NOTICE_QUEUED' } as const;
const NOTICE_NAME = { failed: 'bounce', delayed: 'delay notice', relayed: 'success notice' } as const;

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
    return this.send(meta, rows.filter(({ row }) => wantsNotice(row, 'DELAY')), 'delayed');
  }

  delivered(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    return this.send(meta, rows.filter(({ row }) => wantsNotice(row, 'SUCCESS')), 'relayed');
  }

  /**
   * Runs queue:bounce for each row (when a plugin listens); returns the rows that still get a
   * DSN. Each row left out is logged as DROPPED, with why.
   */
  private async runBounceHooks(meta: MessageMeta, rows: FinishedRow[]): Promise<FinishedRow[]> {
    const hooks = this.hooks?.has('queue:bounce') ? this.hooks : undefined;
    const mayBounce = mayBounceTo({ sender: meta.from, originalHeaders: meta.headers });
    const keep: FinishedRow[] = [];
    for (const finished of rows) {
      const { row, result } = finished;
      const asked = wantsNotice(row, 'FAILURE');
      let dsn = mayBounce && asked;
      if (hooks) {
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
          dsn,
        };
        await hooks.notify('queue:bounce', bounce);
        dsn = dsn && bounce.dsn;
        if (mayBounce && asked && !dsn) this.dropped(row, 'no bounce: a queue:bounce hook suppressed the DSN');
      }
      if (mayBounce && !asked) this.dropped(row, `no bounce: the client asked for NOTIFY=${row.notify?.join(',')}`);
      // the null sender and the like are logged where the DSN would have been made
      if (dsn || !mayBounce) keep.push(finished);
    }
    return keep;
  }

  private dropped(row: DeliveryRow, reason: string): void {
    logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, recipient: row.recipient, reason });
  }

  private async send(meta: MessageMeta, rows: FinishedRow[], action: Action): Promise<void> {
    if (!rows.length) return;
    if (!mayBounceTo({ sender: meta.from, originalHeaders: meta.headers })) {
      // a success notice not sent is no delivery lost: only bounces and delay notices are logged
      if (action !== 'relayed') for (const { row } of rows) this.dropped(row, `no ${NOTICE_NAME[action]}: null sender, auto-submitted or report mail`);
      return;
    }
    const recipients: DsnRecipient[] = rows.map(({ row, result }) => ({
      recipient: row.recipient,
      action,
      status: result.status ?? (action === 'failed' ? '5.0.0' : action === 'delayed' ? '4.0.0' : '2.0.0'),
      remoteMta: result.mx,
      diagnostic: result.response,
      lastAttempt: row.lastAttempt ?? Date.now(),
      ...(row.orcpt ? { originalRecipient: row.orcpt } : {}),
      ...(action === 'delayed' ? { willRetryUntil: row.created + this.config.queue.maxQueueTime } : {}),
    }));
    const dsn = buildDsn({
      reportingMta: this.config.hostname,
      queueId: meta.id,
      arrivalDate: meta.created,
      sender: meta.from,
      originalHeaders: meta.headers,
      recipients,
      ...(meta.dsn?.envid ? { envelopeId: meta.dsn.envid } : {}),
    });
    const result = await this.ingest.ingest({
      from: '',
      to: dsn.to,
      origin: { via: 'bounce', transmissionType: 'DSN' },
      source: [dsn.message],
      maxSizeBytes: Math.max(dsn.message.length + 1, this.config.smtp.maxSize),
      hideClientInfo: true,
    });
    this.logger.info({ event: NOTICE_EVENT[action], id: meta.id, dsn: result.id, to: meta.from }, `${NOTICE_NAME[action]} for ${meta.id} queued as ${result.id}`);
  }
}
