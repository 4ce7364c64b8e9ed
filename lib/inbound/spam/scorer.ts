/**
 * The spam score of a received message, `spam` in the API: the one thing the parse stage asks
 * (parse-message.ts), after the 250, so scoring never delays a reply.
 *
 *   mode "bayes"    the built-in classifier with the model file (model-file.ts, bayes.ts)
 *   mode "rspamd"   Rspamd's score as a share of its reject threshold (rspamd.ts)
 *   mode "both"     the higher of the two: a message is as suspect as the stricter judge finds
 *                   it; when one of them has no score for it, the other's
 *
 * null when nothing could score the message (no model, a model that knows none of its tokens,
 * Rspamd unset or unavailable): never a made-up number. Scores are rounded to 4 decimals.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { InboundConfig } from '../../config/schema.js';
import type { InboundEnvelope } from '../store/types.js';
import { SpamModelFile } from './model-file.js';
import { RspamdScore } from './rspamd.js';
import { tokenize, type SpamInput } from './tokens.js';

export class SpamScorer {
  private readonly model: SpamModelFile | undefined;
  private readonly rspamd: RspamdScore | undefined;

  constructor(config: InboundConfig['spam'], logger: Logger) {
    if (config.mode !== 'rspamd') this.model = new SpamModelFile(config.model, logger);
    const r = config.rspamd;
    if (config.mode !== 'bayes' && r.url) this.rspamd = new RspamdScore({ url: r.url, timeoutMs: r.timeout, maxSizeBytes: r.maxSize, retryAfterMs: r.retryAfter }, logger);
  }

  start(): void {
    this.model?.start();
  }

  stop(): void {
    this.model?.stop();
  }

  /**
   * The score of one message. `parsed` is the parse as it runs: Rspamd reads the raw message
   * meanwhile, and the classifier waits for the parse. Rejects only if the parse does.
   */
  async score(envelope: InboundEnvelope, raw: () => Readable, parsed: Promise<SpamInput>): Promise<number | null> {
    const [fromRspamd, message] = await Promise.all([this.rspamd?.score(envelope, raw) ?? null, parsed]);
    const classifier = this.model?.classifier;
    const fromBayes = classifier ? classifier.score(tokenize(message)) : null;
    const scores = [fromBayes, fromRspamd].filter((s): s is number => s !== null);
    return scores.length ? Math.round(Math.max(...scores) * 10_000) / 10_000 : null;
  }
}
