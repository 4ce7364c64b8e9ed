/**
 * The POP3 wire parser: bytes in, command lines out. A line ends with LF (a CR before it is
 * dropped), is decoded as UTF-8 (an address may carry UTF-8), and may be at most `maxLineBytes`
 * long with its line end; a longer one is reported, never buffered past the limit.
 *
 * Invariant: the bytes held between calls are at most one unfinished line, under the limit.
 */

export interface ReadResult {
  lines: string[];
  /** a line went past the limit: nothing after it is read */
  tooLong: boolean;
}

const LF = 0x0a;
const CR = 0x0d;

export class LineReader {
  private held: Buffer[] = [];
  private heldBytes = 0;
  private failed = false;

  constructor(readonly maxLineBytes: number) {}

  /** Bytes of an unfinished line waiting for their line end. */
  get partial(): number {
    return this.heldBytes;
  }

  push(chunk: Buffer): ReadResult {
    const lines: string[] = [];
    if (this.failed) return { lines, tooLong: true };
    let from = 0;
    for (let lf = chunk.indexOf(LF); lf !== -1; lf = chunk.indexOf(LF, from)) {
      if (this.heldBytes + lf - from + 1 > this.maxLineBytes) return this.fail(lines);
      const piece = chunk.subarray(from, lf);
      const line = this.heldBytes ? Buffer.concat([...this.held, piece]) : piece;
      this.held = [];
      this.heldBytes = 0;
      lines.push(line.toString('utf8', 0, line[line.length - 1] === CR ? line.length - 1 : line.length));
      from = lf + 1;
    }
    const rest = chunk.length - from;
    if (rest > 0) {
      // a line that cannot end within the limit any more (its LF would be one byte past it)
      if (this.heldBytes + rest >= this.maxLineBytes) return this.fail(lines);
      // a copy: a view would keep the whole read buffer alive for a few bytes
      this.held.push(Buffer.from(chunk.subarray(from)));
      this.heldBytes += rest;
    }
    return { lines, tooLong: false };
  }

  /** Forgets any unfinished line (STLS: nothing sent before the handshake counts after it). */
  reset(): void {
    this.held = [];
    this.heldBytes = 0;
  }

  private fail(lines: string[]): ReadResult {
    this.failed = true;
    this.reset();
    return { lines, tooLong: true };
  }
}
