/**
 * The messages of a training corpus: each path is a folder or a file. In a folder (and its
 * subfolders, MAX_DEPTH deep, in name order, hidden names left out) every `.eml` file is one
 * message and every file that starts with "From " is an mbox of several (mbox.ts); other files
 * are counted as skipped. A file named directly is read the same way.
 *
 * Messages over maxMessageBytes are skipped and counted, so memory stays bounded whatever the
 * corpus holds.
 */
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { mboxMessages } from './mbox.js';

const MAX_DEPTH = 8;

export interface CorpusCount {
  /** .eml and mbox files read */
  files: number;
  messages: number;
  /** files that are neither */
  skippedFiles: number;
  /** messages over the size limit, left out */
  tooBig: number;
}

export const emptyCount = (): CorpusCount => ({ files: 0, messages: 0, skippedFiles: 0, tooBig: 0 });

export async function* corpusMessages(root: string, count: CorpusCount, maxMessageBytes: number): AsyncGenerator<Buffer> {
  for (const file of files(root, 0)) {
    if (file === null) {
      count.skippedFiles++;
    } else if (file.toLowerCase().endsWith('.eml')) {
      count.files++;
      if (statSync(file).size > maxMessageBytes) {
        count.tooBig++;
        continue;
      }
      count.messages++;
      yield readFileSync(file);
    } else if (startsWithFrom(file)) {
      count.files++;
      for await (const message of mboxMessages(file, maxMessageBytes)) {
        if (message === null) {
          count.tooBig++;
          continue;
        }
        count.messages++;
        yield message;
      }
    } else {
      count.skippedFiles++;
    }
  }
}

/** Regular files under p; null for anything else (a FIFO would block a read). */
function* files(p: string, depth: number): Generator<string | null> {
  const stat = statSync(p);
  if (!stat.isDirectory()) {
    yield stat.isFile() ? p : null;
    return;
  }
  if (depth >= MAX_DEPTH) return;
  const names = readdirSync(p).filter((n) => !n.startsWith('.')).sort();
  for (const name of names) yield* files(path.join(p, name), depth + 1);
}

function startsWithFrom(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(5);
    return readSync(fd, head, 0, 5, 0) === 5 && head.toString('latin1') === 'From ';
  } finally {
    closeSync(fd);
  }
}
