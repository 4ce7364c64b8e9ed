/**
 * Splits an mbox file into its messages, streaming: a message starts after a "From " line that
 * opens the file or follows an empty line (the postmark line "From sender date", which is not
 * part of the message). Lines quoted as ">From " (mboxrd, and mboxo for the lines it quotes) lose
 * one ">". Line ends are kept as they are; mailparser reads LF and CRLF alike.
 *
 * Memory is bounded by maxMessageBytes: a message longer than that is skipped, and reported as
 * `null` in its place so the caller can count it.
 */
import { createReadStream } from 'node:fs';

const FROM = Buffer.from('From ');
const QUOTED_FROM = /^>+From /;

export async function* mboxMessages(file: string, maxMessageBytes: number): AsyncGenerator<Buffer | null> {
  let parts: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  let started = false;
  let previousBlank = true;
  const finish = (): Buffer | null | undefined => {
    if (!started) return undefined;
    const out = tooBig ? null : Buffer.concat(parts, size);
    parts = [];
    size = 0;
    tooBig = false;
    return out;
  };
  for await (const line of lines(createReadStream(file), maxMessageBytes)) {
    if (line === null) {
      // a single line longer than a whole message may be
      if (started) tooBig = true;
      parts = [];
      previousBlank = false;
      continue;
    }
    if (previousBlank && line.subarray(0, FROM.length).equals(FROM)) {
      const done = finish();
      if (done !== undefined) yield done;
      started = true;
      tooBig = false;
      previousBlank = false;
      continue;
    }
    previousBlank = line.length === 1 ? line[0] === 0x0a : line.length === 2 && line[0] === 0x0d && line[1] === 0x0a;
    if (!started || tooBig) continue;
    const kept = line[0] === 0x3e && QUOTED_FROM.test(line.subarray(0, 64).toString('latin1')) ? line.subarray(1) : line;
    size += kept.length;
    if (size > maxMessageBytes) {
      tooBig = true;
      parts = [];
      continue;
    }
    parts.push(kept);
  }
  const last = finish();
  if (last !== undefined) yield last;
}

/** Lines with their line ends; null in place of a line longer than maxLineBytes. */
async function* lines(source: AsyncIterable<Buffer>, maxLineBytes: number): AsyncGenerator<Buffer | null> {
  let rest: Buffer[] = [];
  let restBytes = 0;
  let overlong = false;
  for await (const chunk of source) {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a, start); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      const piece = chunk.subarray(start, nl + 1);
      start = nl + 1;
      if (overlong) {
        overlong = false;
        yield null;
      } else if (restBytes) {
        yield Buffer.concat([...rest, piece]);
      } else {
        yield piece;
      }
      rest = [];
      restBytes = 0;
    }
    if (start < chunk.length && !overlong) {
      rest.push(chunk.subarray(start));
      restBytes += chunk.length - start;
      if (restBytes > maxLineBytes) {
        overlong = true;
        rest = [];
        restBytes = 0;
      }
    }
  }
  if (overlong) yield null;
  else if (restBytes) yield Buffer.concat(rest);
}
