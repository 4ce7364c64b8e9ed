/**
 * Rspamd's opinion of a received message as a number from 0 to 1, through the same /checkv2
 * client core/rspamd uses (plugins/core/rspamd/client.ts: it imports nothing of Sluice, so the
 * plugin keeps needing no runtime import of lib/ and the receiver reuses it as it is).
 *
 * The mapping: Rspamd's score is a sum of rule weights with no upper bound (and below 0 for mail
 * it trusts); its reject threshold (`required_score`) is the score at which it would refuse the
 * message. So spam = score / threshold, clamped to [0, 1]: 1.0 means "Rspamd would reject this",
 * 0.5 "half way there", and messages keep their order. A verdict of "reject" is 1.0 whatever the
 * score (a rule such as GTUBE can force it). No usable threshold in the answer: Rspamd's stock
 * reject threshold, 15.
 *
 * Failure never blocks a message: Rspamd down, slow (past `timeout`) or answering nonsense gives
 * null, and for `retryAfter` after a failure messages do not wait for it at all. One
 * RSPAMD_UNAVAILABLE line per outage, one RSPAMD_RECOVERED (with how many messages went without
 * its score) when it answers again.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { RspamdClient, RspamdError, type RspamdResult } from '../../../plugins/core/rspamd/client.js';
import type { InboundEnvelope } from '../store/types.js';

const STOCK_REJECT_THRESHOLD = 15;

export interface RspamdScoreOptions {
  url: string;
  timeoutMs: number;
  maxSizeBytes: number;
  retryAfterMs: number;
}

/** Rspamd's score as a share of its reject threshold (see the header). */
export function rspamdShare(result: Pick<RspamdResult, 'action' | 'score' | 'requiredScore'>): number {
  if (result.action === 'reject') return 1;
  const threshold = Number.isFinite(result.requiredScore) && result.requiredScore > 0 ? result.requiredScore : STOCK_REJECT_THRESHOLD;
  return Math.min(1, Math.max(0, result.score / threshold));
}

export class RspamdScore {
  private readonly client: RspamdClient;
  /** while now < this, Rspamd is not asked */
  private pausedUntil = 0;
  private failing = false;
  /** messages that went without Rspamd's score in this outage */
  private skipped = 0;

  constructor(
    private readonly opts: RspamdScoreOptions,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.client = new RspamdClient(opts.url, opts.timeoutMs);
  }

  /** The share for one message, or null (too big, Rspamd unavailable). Never throws. */
  async score(envelope: InboundEnvelope, raw: () => Readable): Promise<number | null> {
    if (envelope.size > this.opts.maxSizeBytes) return null;
    if (this.now() < this.pausedUntil) {
      this.skipped++;
      return null;
    }
    let result: RspamdResult;
    try {
      result = await this.client.check({
        message: raw(),
        from: envelope.from,
        rcpt: envelope.rcpts.slice(0, 100).map((r) => r.address),
        ip: envelope.client.ip,
        helo: envelope.client.helo,
        queueId: envelope.id,
      });
    } catch (err) {
      this.failed(err instanceof RspamdError ? err.message : String((err as Error)?.message ?? err), envelope.id);
      return null;
    }
    if (this.failing) {
      this.failing = false;
      this.logger.info({ event: 'RSPAMD_RECOVERED', url: this.opts.url, skipped: this.skipped }, `Rspamd answers again; ${this.skipped} messages were stored without its score`);
      this.skipped = 0;
    }
    return rspamdShare(result);
  }

  private failed(reason: string, id: string): void {
    this.skipped++;
    this.pausedUntil = this.now() + this.opts.retryAfterMs;
    if (this.failing) return;
    this.failing = true;
    this.logger.warn(
      { event: 'RSPAMD_UNAVAILABLE', url: this.opts.url, id, reason, retryInMs: this.opts.retryAfterMs },
      `Rspamd at ${this.opts.url} failed (${reason}): messages are stored without its score; asking again in ${this.opts.retryAfterMs} ms`,
    );
  }
}
