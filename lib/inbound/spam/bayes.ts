/**
 * A multinomial Naive Bayes classifier with two classes, spam and ham.
 *
 * Training counts how often each token appears in each class (BayesTrainer). Scoring adds, in log
 * space, the prior log(spam messages / ham messages) and, for every token of the message the
 * model knows, count × log(P(token | spam) / P(token | ham)), each P with Laplace (add-one)
 * smoothing over the model's vocabulary; the sum d gives P(spam | message) = 1 / (1 + e^-d).
 * Tokens the model never saw are left out: they would only shift the score towards the class with
 * fewer tokens, which says nothing about the message.
 *
 * No score is ever made up: a model without both spam and ham cannot tell them apart, and a
 * message with no token the model knows gives no evidence, so both give null.
 *
 * Bounded: the trainer keeps at most a few times maxVocabulary distinct tokens while counting
 * (the rarest are dropped when it would hold more) and the model keeps the maxVocabulary most
 * frequent; the classifier holds one number per token.
 */
import type { SpamModel } from './model.js';

export type Label = 'spam' | 'ham';

export class BayesTrainer {
  private readonly counts = new Map<string, [number, number]>();
  private readonly messages = { spam: 0, ham: 0 };
  /** counting stops growing past this many distinct tokens: the rarest are dropped then */
  private readonly pruneAt: number;

  constructor(private readonly maxVocabulary: number) {
    this.pruneAt = Math.max(4 * maxVocabulary, 100_000);
  }

  get messageCounts(): Readonly<{ spam: number; ham: number }> {
    return this.messages;
  }

  add(tokens: readonly string[], label: Label): void {
    this.messages[label]++;
    const i = label === 'spam' ? 0 : 1;
    for (const token of tokens) {
      let pair = this.counts.get(token);
      if (!pair) this.counts.set(token, (pair = [0, 0]));
      pair[i]++;
    }
    if (this.counts.size > this.pruneAt) this.prune();
  }

  /** Drops the rarest tokens until at most half of pruneAt are left. */
  private prune(): void {
    for (let floor = 1; this.counts.size > this.pruneAt / 2; floor++) {
      for (const [token, [s, h]] of this.counts) if (s + h <= floor) this.counts.delete(token);
    }
  }

  /** The model: the maxVocabulary most frequent tokens (ties in token order, so a run is repeatable). */
  build(trainedAt = new Date()): SpamModel & { seen: number } {
    const ranked = [...this.counts].sort(([ta, [sa, ha]], [tb, [sb, hb]]) => sb + hb - (sa + ha) || (ta < tb ? -1 : ta > tb ? 1 : 0));
    const kept = ranked.slice(0, this.maxVocabulary).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      trainedAt: trainedAt.toISOString(),
      messages: { ...this.messages },
      vocabulary: new Map(kept.map(([t, [s, h]]) => [t, [s, h] as const])),
      seen: this.counts.size,
    };
  }
}

export class BayesClassifier {
  /** log P(token | spam) − log P(token | ham), per token */
  private readonly weights = new Map<string, number>();
  private readonly prior: number;
  /** the model has seen both classes and some tokens: it can score */
  readonly usable: boolean;

  constructor(model: SpamModel) {
    const { spam, ham } = model.messages;
    let spamTokens = 0;
    let hamTokens = 0;
    for (const [s, h] of model.vocabulary.values()) {
      spamTokens += s;
      hamTokens += h;
    }
    const v = model.vocabulary.size;
    this.usable = spam > 0 && ham > 0 && v > 0;
    this.prior = this.usable ? Math.log(spam / ham) : 0;
    if (!this.usable) return;
    const spamDenominator = Math.log(spamTokens + v);
    const hamDenominator = Math.log(hamTokens + v);
    for (const [token, [s, h]] of model.vocabulary) {
      this.weights.set(token, Math.log(s + 1) - spamDenominator - (Math.log(h + 1) - hamDenominator));
    }
  }

  /** P(spam | tokens), 0–1; null when the model cannot score or knows none of the tokens. */
  score(tokens: readonly string[]): number | null {
    if (!this.usable) return null;
    let d = this.prior;
    let known = 0;
    for (const token of tokens) {
      const w = this.weights.get(token);
      if (w === undefined) continue;
      d += w;
      known++;
    }
    if (!known) return null;
    // e^-d overflows past ~709: the answer is 0 (or 1) to every digit we keep
    return d < -700 ? 0 : d > 700 ? 1 : 1 / (1 + Math.exp(-d));
  }
}
