/**
 * Turns finished deliveries into notices for the sender: a DSN for bounced recipients, one
 * "delayed" DSN when a delivery has waited past delayWarning. DSNs go through the one ingest path
 * with the null sender, so they are queued, routed and delivered like any other mail, and can
 * never bounce again (nothing bounces to <>).
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
 * recorded without it; a temporary refusal fails the write, which the outcome stage retries.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Ingest } from '../accept/ingest.js';
import { SmtpError } from '../errors/smtp-error.js';
import { logEvent } from '../log/logger.js';
import { parseHeaders } from '../message/headers.js';
import type { BounceInfo } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { BatchOp } from '../queue/group-commit.js';
import type { FinishedRow, NoticeWriter } from '../queue/outcomes.js';
import type { MessageMeta } from '../queue/types.js';
import { buildDsn, mayBounceTo, type DsnRecipient } from './dsn.js';

type Action = 'failed' | 'delayed';

export class BounceNotifier implements NoticeWriter {
  constructor(
    private readonly config: Config,
    private readonly ingest: Ingest,
    private readonly logger: Logger,
    private readonly hooks?: HookRunner,
  ) {}

  async prepare(meta: MessageMeta, bounced: FinishedRow[], delayed: FinishedRow[]): Promise<((ops: BatchOp[]) => Promise<boolean>) | undefined> {
    const failed = bounced.length ? await this.runBounceHooks(meta, bounced) : [];
    if (!mayBounceTo({ sender: meta.from, originalHeaders: meta.headers })) {
      for (const [action, rows] of [['failed', failed], ['delayed', delayed]] as const) {
        for (const { row } of rows) {
          logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, recipient: row.recipient, reason: `no ${action === 'failed' ? 'bounce' : 'delay notice'}: null sender, auto-submitted or report mail` });
        }
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

  /** Queues one DSN, with `carried` in its batch; false when a plugin refused it for good
   * (nothing was written). Throws when it could not be stored now. */
  private async queue(meta: MessageMeta, rows: FinishedRow[], action: Action, carried: readonly BatchOp[]): Promise<boolean> {
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
    const what = action === 'failed' ? 'bounce' : 'delay notice';
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
      for (const { row } of rows) logEvent(this.logger, 'DROPPED', { id: row.id, seq: row.seq, recipient: row.recipient, reason: `no ${what}: refused by a plugin: ${err.message}` });
      return false;
    }
    this.logger.info({ event: action === 'failed' ? 'BOUNCE_QUEUED' : 'DELAY_NOTICE_QUEUED', id: meta.id, dsn: result.id, to: meta.from }, `${what} for ${meta.id} queued as ${result.id}`);
    return true;
  }
}
