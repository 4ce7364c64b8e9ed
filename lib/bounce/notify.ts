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
 * A DSN is written in the same synced batch as the queue change it reports on (the removal of the
 * bounced row; the "warned" mark of a delayed one): the outcome stage hands over its batch, and
 * the DSN's ingest carries it. So a row never leaves the queue without its DSN, and a DSN is not
 * held to the free-space reserve meant for clients (ingest's rule for notices). When a report
 * calls for both notices, the delay notice goes first on its own and is not sent again if the
 * bounce then has to be retried.
 *
 * Before a DSN is made, the queue:bounce hook is told about each bounced recipient (ZoneMTA's
 * `bounce` object), once per report; a handler may set `bounce.dsn = false` to send none for that
 * recipient. A failing handler is logged and changes nothing: the DSN still goes. A DSN that a
 * plugin refuses for good (a 5xx from a message hook) is logged as DROPPED and the report is
 * recorded without it; a temporary refusal fails the write, which the outcome stage retries. A
 * success notice is sent after its delivery is recorded (a lost one loses no mail).
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Ingest } from '../accept/ingest.js';
import { SmtpError } from '../errors/smtp-error.js';
import { logEvent } from '../log/logger.js';
import type { LogEvent } from '../log/events.js';
import { parseHeaders } from '../message/headers.js';
import type { BounceInfo } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { BatchOp } from '../store/group-commit.js';
import type { FinishedRow, NoticeWriter, OutcomeListener } from '../queue/outcomes.js';
import { lifetimeStart, type DeliveryRow, type MessageMeta } from '../queue/types.js';
import { buildDsn, mayBounceTo, type DsnRecipient } from './dsn.js';

type Action = DsnRecipient['action'];

/** Whether a recipient's NOTIFY asks for this kind of notice (without NOTIFY: failures and delays). */
export function wantsNotice(row: DeliveryRow, kind: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  return row.notify ? row.notify.includes(kind) : kind !== 'SUCCESS';
}

const NOTICE_EVENT = { failed: 'BOUNCE_QUEUED', delayed: 'DELAY_NOTICE_QUEUED', relayed: 'SUCCESS_NOTICE_QUEUED' } as const satisfies Record<string, LogEvent>;
const NOTICE_NAME = { failed: 'bounce', delayed: 'delay notice', relayed: 'success notice' } as const;

export class BounceNotifier implements NoticeWriter, OutcomeListener {
  constructor(
    private readonly config: Config,
    private readonly ingest: Ingest,
    private readonly logger: Logger,
    private readonly hooks?: HookRunner,
  ) {}

  async prepare(meta: MessageMeta, bounced: FinishedRow[], delayedRows: FinishedRow[]): Promise<((ops: BatchOp[]) => Promise<boolean>) | undefined> {
    const failed = bounced.length ? await this.runBounceHooks(meta, bounced) : [];
    const delayed = delayedRows.filter(({ row }) => wantsNotice(row, 'DELAY'));
    if (!mayBounceTo({ sender: meta.from, originalHeaders: meta.headers })) {
      for (const [action, rows] of [['failed', failed], ['delayed', delayed]] as const) {
        for (const { row } of rows) this.dropped(row, `no ${NOTICE_NAME[action]}: null sender, auto-submitted or report mail`);
      }
      return undefined;
    }
    const notices = [
      { action: 'delayed' as Action, rows: delayed },
      { action: 'failed' as Action, rows: failed },
    ].filter((n) => n.rows.length);
    if (!notices.length) return undefined;
    /** notices queued on their own by an earlier try of this report */
    const sent = new Set<Action>();
    return async (ops) => {
      let carried = false;
      for (const [i, notice] of notices.entries()) {
        if (sent.has(notice.action)) continue;
        const last = i === notices.length - 1;
        const queued = await this.queue(meta, notice.rows, notice.action, last ? ops : []);
        if (last) carried = queued;
        else sent.add(notice.action);
      }
      return carried;
    };
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

  /** Success notices for delivered recipients that asked for one (NOTIFY=SUCCESS); never in the way of the delivery. */
  async delivered(meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    const asked = rows.filter(({ row }) => wantsNotice(row, 'SUCCESS'));
    // a success notice not sent is no delivery lost: the null sender and the like are not logged
    if (!asked.length || !mayBounceTo({ sender: meta.from, originalHeaders: meta.headers })) return;
    await this.queue(meta, asked, 'relayed', []);
  }

  /** Queues one DSN, with `carried` in its batch; false when a plugin refused it for good
   * (nothing was written). Throws when it could not be stored now. */
  private async queue(meta: MessageMeta, rows: FinishedRow[], action: Action, carried: readonly BatchOp[]): Promise<boolean> {
    const recipients: DsnRecipient[] = rows.map(({ row, result }) => ({
      recipient: row.recipient,
      action,
      status: result.status ?? (action === 'failed' ? '5.0.0' : action === 'delayed' ? '4.0.0' : '2.0.0'),
      remoteMta: result.mx,
      diagnostic: result.response,
      lastAttempt: row.lastAttempt ?? Date.now(),
      ...(row.orcpt ? { originalRecipient: row.orcpt } : {}),
      ...(action === 'delayed' ? { willRetryUntil: lifetimeStart(row) + this.config.queue.maxQueueTime } : {}),
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
    const what = NOTICE_NAME[action];
    let result;
    try {
      result = await this.ingest.ingest({
        from: '',
        to: dsn.to,
        origin: { via: 'bounce', transmissionType: 'DSN' },
        source: [dsn.message],
        maxSizeBytes: Math.max(dsn.message.length + 1, this.config.smtp.maxSize),
        hideClientInfo: true,
        carried,
      });
    } catch (err) {
      if (!(err instanceof SmtpError && err.responseCode >= 500)) throw err;
      for (const { row } of rows) this.dropped(row, `no ${what}: refused by a plugin: ${err.message}`);
      return false;
    }
    this.logger.info({ event: NOTICE_EVENT[action], id: meta.id, dsn: result.id, to: meta.from }, `${what} for ${meta.id} queued as ${result.id}`);
    return true;
  }
}
