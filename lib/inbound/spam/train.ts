/**
 * `sluice spam train`: reads a spam corpus and a ham corpus (folders of .eml files, mbox files),
 * parses every message as the receiver does (parse-message.ts), counts its tokens (tokens.ts),
 * and writes the model (model.ts) to --out or to the app dir's inbound.spam.model, where a
 * running receiver picks it up within a second.
 *
 * Everything that can be wrong is said before any work and in one line, exit 1: a corpus path
 * that does not exist, a config that does not load, a folder for the model that is not there.
 * A corpus with no message in it is an error too: a model that never saw spam (or ham) cannot
 * tell them apart.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { parseRaw } from '../parse/parse-message.js';
import { BayesTrainer, type Label } from './bayes.js';
import { corpusMessages, emptyCount, type CorpusCount } from './corpus.js';
import { MAX_VOCABULARY, writeModelFile } from './model.js';
import { tokenize } from './tokens.js';

/** The largest message read from a corpus (the receiver's default maxSize). */
const MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

export interface TrainOptions {
  spam: readonly string[];
  ham: readonly string[];
  /** the app dir whose config names the model file (when out is not given) */
  appDir: string;
  out?: string;
  maxVocabulary: number;
}

export interface TrainIo {
  out(line: string): void;
  err(line: string): void;
}

class TrainError extends Error {}

/** Returns the exit code. */
export async function trainCommand(opts: TrainOptions, io: TrainIo): Promise<number> {
  try {
    if (!Number.isSafeInteger(opts.maxVocabulary) || opts.maxVocabulary < 1 || opts.maxVocabulary > MAX_VOCABULARY) {
      throw new TrainError(`--max-vocabulary: a whole number from 1 to ${MAX_VOCABULARY}, not ${opts.maxVocabulary}`);
    }
    for (const [label, paths] of [['spam', opts.spam], ['ham', opts.ham]] as const) {
      if (!paths.length) throw new TrainError(`name at least one --${label} folder or mbox file`);
      for (const p of paths) checkPath(`--${label} ${p}`, p);
    }
    const out = await modelPath(opts);
    checkPath(`the folder for the model, ${path.dirname(out)}`, path.dirname(out));

    const trainer = new BayesTrainer(opts.maxVocabulary);
    const counts: Record<Label, CorpusCount> = { spam: emptyCount(), ham: emptyCount() };
    for (const label of ['spam', 'ham'] as const) {
      for (const p of opts[label]) {
        for await (const raw of corpusMessages(p, counts[label], MAX_MESSAGE_BYTES)) {
          trainer.add(tokenize(await parseRaw([raw])), label);
        }
      }
      if (!counts[label].messages) throw new TrainError(`no messages in --${label} ${opts[label].join(', ')} (looked for .eml files and mbox files)`);
    }

    const model = trainer.build();
    writeModelFile(out, model);
    for (const label of ['spam', 'ham'] as const) io.out(`${label}: ${describe(counts[label])}`);
    io.out(`vocabulary: ${model.vocabulary.size} tokens kept (of ${model.seen} seen; at most ${opts.maxVocabulary})`);
    io.out(`model written to ${out} (a running receiver loads it within a second)`);
    return 0;
  } catch (err) {
    if (err instanceof TrainError) {
      io.err(`sluice spam train: ${err.message}`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e?.code && e.path) {
      io.err(`sluice spam train: ${e.path}: ${e.code === 'EACCES' ? 'permission denied' : e.message}`);
      return 1;
    }
    throw err;
  }
}

function checkPath(what: string, p: string): void {
  try {
    statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TrainError(`${what}: ${code === 'ENOENT' ? 'no such file or directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message}`);
  }
}

/** --out as given, or the app dir's inbound.spam.model (its config must load for that). */
async function modelPath(opts: TrainOptions): Promise<string> {
  if (opts.out) return path.resolve(opts.out);
  const { ConfigError, loadConfig } = await import('../../config/load.js');
  try {
    return loadConfig({ appDir: opts.appDir }).config.inbound.spam.model;
  } catch (err) {
    if (err instanceof ConfigError) throw new TrainError(`the config of ${opts.appDir} does not load (${err.problems.join('; ')}); fix it (sluice check-config) or give --out`);
    throw err;
  }
}

function describe(c: CorpusCount): string {
  const parts = [`${c.messages} messages from ${c.files} file${c.files === 1 ? '' : 's'}`];
  if (c.tooBig) parts.push(`${c.tooBig} over ${MAX_MESSAGE_BYTES / 1024 / 1024} MB left out`);
  if (c.skippedFiles) parts.push(`${c.skippedFiles} other file${c.skippedFiles === 1 ? '' : 's'} skipped`);
  return parts.join(', ');
}
