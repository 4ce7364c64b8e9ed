/**
 * Splits a CRLF-normalised message stream into its header block and body. The header block is
 * held in memory (bounded by maxHeaderBytes); body bytes pass straight through.
 *
 * Linear in the bytes however they are chunked: each chunk is searched once (with the three bytes
 * before it, where a blank line may straddle the seam) and copied once into a buffer that grows by
 * doubling, so a client trickling a 1 MB header a few bytes at a time costs what one 1 MB chunk
 * costs. A header block that arrives within its first chunk is not copied at all.
 */
const END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const EMPTY = Buffer.alloc(0);
/** the first allocation of the header buffer; it doubles from there up to maxHeaderBytes */
const INITIAL_BYTES = 4096;

export class HeaderTooLargeError extends Error {
  constructor() {
    super('header block too large');
  }
}

export class HeaderSplitter {
  /** the header bytes so far, in `held[0..bytes)` */
  private held: Buffer = EMPTY;
  private bytes = 0;
  private headers: Buffer | undefined;

  constructor(private readonly maxHeaderBytes: number) {}

  get done(): boolean {
    return this.headers !== undefined;
  }

  /** The header block, including the blank line that ends it. */
  get headerBlock(): Buffer {
    if (!this.headers) throw new Error('headers not complete');
    return this.headers;
  }

  /** Takes a chunk; returns the part of it that is body (empty while still in the headers). */
  push(chunk: Buffer): Buffer {
    if (this.headers) return chunk;
    if (!chunk.length) return EMPTY;
    // a message that starts with an empty line has no headers at all
    const start = this.startsWithCrlf(chunk);
    if (start !== -1) {
      this.complete(EMPTY);
      return chunk.subarray(start);
    }
    const end = this.blankLineEnd(chunk);
    if (end === -1) {
      if (this.bytes + chunk.length > this.maxHeaderBytes) throw new HeaderTooLargeError();
      this.append(chunk);
      return EMPTY;
    }
    if (this.bytes + end > this.maxHeaderBytes) throw new HeaderTooLargeError();
    if (this.bytes === 0) {
      this.complete(chunk.subarray(0, end));
    } else {
      this.append(chunk.subarray(0, end));
      this.complete(this.held.subarray(0, this.bytes));
    }
    return chunk.subarray(end);
  }

  /** At the end of the stream: a message without a blank line is all headers and no body. */
  finish(): void {
    if (this.headers) return;
    const all = this.held.subarray(0, this.bytes);
    const trimmed = all.length && !all.subarray(-2).equals(CRLF) ? Buffer.concat([all, CRLF]) : all;
    this.complete(trimmed.length ? Buffer.concat([trimmed, CRLF]) : trimmed);
  }

  /**
   * Where the body starts when the stream begins with an empty line (its CR may have come alone
   * in the chunk before), or -1.
   */
  private startsWithCrlf(chunk: Buffer): number {
    if (this.bytes === 0) return chunk[0] === 0x0d && chunk[1] === 0x0a ? 2 : -1;
    if (this.bytes === 1 && this.held[0] === 0x0d && chunk[0] === 0x0a) return 1;
    return -1;
  }

  /** The offset in `chunk` just past the blank line that ends the headers, or -1. */
  private blankLineEnd(chunk: Buffer): number {
    if (this.bytes > 0) {
      const tail = this.held.subarray(Math.max(0, this.bytes - 3), this.bytes);
      const seam = Buffer.concat([tail, chunk.subarray(0, 3)]);
      const at = seam.indexOf(END);
      if (at !== -1) return at + END.length - tail.length;
    }
    const at = chunk.indexOf(END);
    return at === -1 ? -1 : at + END.length;
  }

  private append(bytes: Buffer): void {
    const need = this.bytes + bytes.length;
    if (need > this.held.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, Math.min(Math.max(this.held.length * 2, INITIAL_BYTES), this.maxHeaderBytes)));
      this.held.copy(grown, 0, 0, this.bytes);
      this.held = grown;
    }
    bytes.copy(this.held, this.bytes);
    this.bytes = need;
  }

  private complete(block: Buffer): void {
    this.headers = block;
    this.held = EMPTY;
    this.bytes = 0;
  }
}
