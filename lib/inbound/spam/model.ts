/**
 * The spam model file: what `sluice spam train` counted, as JSON.
 *
 *   { "format": "sluice-spam-model", "version": 1, "trainedAt": "2026-12-04T10:00:00.000Z",
 *     "messages": { "spam": 20, "ham": 20 },
 *     "vocabulary": { "subject:winner": [7, 0], "url:app.test": [0, 12], … } }
 *
 * `vocabulary` holds, per token, the times it was seen in spam and in ham. `version` names both
 * this layout and the tokeniser that made the tokens (tokens.ts): a file of another version is
 * refused whole, never read as if its tokens meant what ours do.
 *
 * The file is written atomically (a temporary file in the same directory, synced, renamed over
 * the old one, the directory synced), so the receiver, which re-reads it when it changes, never
 * sees half a model. Reading is bounded: a file over MAX_MODEL_BYTES or a vocabulary over
 * MAX_VOCABULARY is refused.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

export const MODEL_FORMAT = 'sluice-spam-model';
export const MODEL_VERSION = 1;
export const MAX_MODEL_BYTES = 64 * 1024 * 1024;
export const MAX_VOCABULARY = 1_000_000;

export interface SpamModel {
  trainedAt: string;
  messages: { spam: number; ham: number };
  /** token → [times seen in spam, times seen in ham] */
  vocabulary: Map<string, readonly [number, number]>;
}

/** Why a model file cannot be used, in words for the log or the terminal. */
export class ModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelError';
  }
}

const count = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export function parseModel(text: string): SpamModel {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelError(`not JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null) throw new ModelError('not a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== MODEL_FORMAT) throw new ModelError(`not a Sluice spam model (format ${JSON.stringify(o.format)}, expected "${MODEL_FORMAT}")`);
  if (o.version !== MODEL_VERSION) throw new ModelError(`model version ${JSON.stringify(o.version)}, this Sluice reads version ${MODEL_VERSION}: train it again with this version's \`sluice spam train\``);
  const messages = o.messages as Record<string, unknown> | undefined;
  if (!messages || !count(messages.spam) || !count(messages.ham)) throw new ModelError('"messages" must hold the counts "spam" and "ham"');
  if (typeof o.vocabulary !== 'object' || o.vocabulary === null || Array.isArray(o.vocabulary)) throw new ModelError('"vocabulary" must be an object of token: [spam, ham]');
  const entries = Object.entries(o.vocabulary as Record<string, unknown>);
  if (entries.length > MAX_VOCABULARY) throw new ModelError(`the vocabulary has ${entries.length} tokens, more than the ${MAX_VOCABULARY} a model may hold`);
  const vocabulary = new Map<string, readonly [number, number]>();
  for (const [token, pair] of entries) {
    if (!Array.isArray(pair) || pair.length !== 2 || !count(pair[0]) || !count(pair[1])) throw new ModelError(`vocabulary ${JSON.stringify(token.slice(0, 60))}: expected [spam, ham] counts`);
    vocabulary.set(token, [pair[0], pair[1]]);
  }
  return { trainedAt: typeof o.trainedAt === 'string' ? o.trainedAt : '', messages: { spam: messages.spam, ham: messages.ham }, vocabulary };
}

export function serializeModel(model: SpamModel): string {
  // one token a line: a diff of two models reads as the tokens that changed
  const lines = [...model.vocabulary].map(([t, [s, h]]) => `    ${JSON.stringify(t)}: [${s}, ${h}]`);
  const head = { format: MODEL_FORMAT, version: MODEL_VERSION, trainedAt: model.trainedAt, messages: model.messages };
  return `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "vocabulary": {\n${lines.join(',\n')}\n  }\n}\n`;
}

/** Writes the model so that a reader sees the old file or the new one, whole, never a mix. */
export function writeModelFile(file: string, model: SpamModel): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, serializeModel(model));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  // the rename itself is durable only once the directory is synced
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
