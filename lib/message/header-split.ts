/**
 * Splits a CRLF-normalised message stream into its header block and body. The header block is
 * held in memory (bounded by maxHeaderBytes); body bytes pass straight through.
 */
const END = Buffer.from('\r\n\r\n');

export class HeaderTooLargeError extends Error {
  constructor() {
    super('header block too large');
  }
}

export class HeaderSplitter {
  private parts: Buffer[] = [];
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
    // a message that starts with an empty line has no headers at all
    if (this.bytes === 0 && chunk.length >= 2 && chunk[0] === 0x0d && chunk[1] === 0x0a) {
      this.headers = Buffer.alloc(0);
      return chunk.subarray(2);
    }
    const searchFrom = Math.max(0, this.bytes - 3);
    this.parts.push(chunk);
    this.bytes += chunk.length;
    const all = this.parts.length === 1 ? chunk : Buffer.concat(this.parts, this.bytes);
    this.parts = [all];
    const at = all.indexOf(END, searchFrom);
    if (at === -1) {
      if (this.bytes > this.maxHeaderBytes) throw new HeaderTooLargeError();
      return Buffer.alloc(0);
    }
    if (at + 4 > this.maxHeaderBytes) throw new HeaderTooLargeError();
    this.headers = all.subarray(0, at + 4);
    this.parts = [];
    return all.subarray(at + 4);
  }

  /** At the end of the stream: a message without a blank line is all headers and no body. */
  finish(): void {
    if (this.headers) return;
    const all = Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    const trimmed = all.length && !all.subarray(-2).equals(Buffer.from('\r\n')) ? Buffer.concat([all, Buffer.from('\r\n')]) : all;
    this.headers = trimmed.length ? Buffer.concat([trimmed, Buffer.from('\r\n')]) : trimmed;
  }
}
