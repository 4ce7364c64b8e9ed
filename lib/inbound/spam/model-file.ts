/**
 * The receiver's view of the model file (inbound.spam.model): read at start, re-read when it
 * changes (checked every second, as the blocklist is), so a `sluice spam train` takes effect
 * without a restart.
 *
 * No file: no classifier (the Bayes score is null). A file that cannot be used (not JSON, another
 * version, too big) is logged with the reason; a model loaded before stays in use, since the
 * trainer replaces the file atomically and a broken one is someone's mistake in progress.
 */
import { readFileSync, statSync } from 'node:fs';
import type { Logger } from 'pino';
import { watchForChanges } from '../file-watch.js';
import { BayesClassifier } from './bayes.js';
import { MAX_MODEL_BYTES, ModelError, parseModel } from './model.js';


export class SpamModelFile {
  private current: BayesClassifier | undefined;
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly file: string,
    private readonly logger: Logger,
  ) {}

  /** The classifier of the model in the file; undefined while there is none. */
  get classifier(): BayesClassifier | undefined {
    return this.current;
  }

  start(): void {
    this.load();
    this.unwatch = watchForChanges(this.file, () => this.load());
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  load(): void {
    const file = this.file;
    let text: string;
    try {
      const size = statSync(file).size;
      if (size > MAX_MODEL_BYTES) throw new ModelError(`${size} bytes, more than the ${MAX_MODEL_BYTES} a model file may have`);
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.current = undefined;
        this.logger.info({ event: 'SPAM_MODEL_MISSING', file }, `no spam model at ${file}: the Bayes score is null until \`sluice spam train\` writes one`);
        return;
      }
      this.refuse(err);
      return;
    }
    try {
      const model = parseModel(text);
      const classifier = new BayesClassifier(model);
      this.current = classifier;
      const fields = { event: 'SPAM_MODEL_LOADED', file, spam: model.messages.spam, ham: model.messages.ham, vocabulary: model.vocabulary.size, trainedAt: model.trainedAt };
      this.logger.info(fields, classifier.usable ? `spam model loaded: ${model.messages.spam} spam and ${model.messages.ham} ham messages, ${model.vocabulary.size} tokens` : `spam model loaded, but it was trained without spam or without ham: the Bayes score is null`);
    } catch (err) {
      this.refuse(err);
    }
  }

  private refuse(err: unknown): void {
    const reason = (err as Error)?.message ?? String(err);
    const what = this.current ? 'the model loaded before stays in use' : 'the Bayes score is null until it is fixed';
    this.logger.warn({ event: 'SPAM_MODEL_INVALID', file: this.file, reason }, `spam model ${this.file} cannot be used (${reason}); ${what}`);
  }
}
