/**
 * Bodies of messages just accepted, kept in memory for their first delivery attempt.
 *
 * A message accepted now is usually handed to a worker within milliseconds, and the worker then
 * asks for its body chunk by chunk. Reading those chunks back from LevelDB (a threadpool call, a
 * copy, and for older entries a block read and decompression) was the master's largest cost per
 * relayed 100 KB message. The chunks are still in memory at the commit, so the first attempt is
 * served from here; LevelDB stays the only truth (a message is in the queue because its commit
 * was synced, never because it is here), and anything not found here is read from disk.
 *
 * Bounded by bytes: a message larger than `maxMessageBytes` is not kept at all, and the oldest
 * entries go first when the total would pass `maxBytes`. An entry leaves when its first delivery
 * attempt ends, when the message is deleted, or when it is pushed out.
 */
export interface FreshBodiesOptions {
  maxBytes: number;
  maxMessageBytes: number;
}

export class FreshBodies {
  private readonly entries = new Map<string, Buffer[]>();
  private bytes = 0;

  constructor(private readonly opts: FreshBodiesOptions) {}

  /** Whether a body of this size would be kept (the writer retains its chunks only then). */
  wants(sizeBytes: number): boolean {
    return sizeBytes <= this.opts.maxMessageBytes && this.opts.maxBytes > 0;
  }

  add(id: string, chunks: readonly Buffer[]): void {
    const size = chunks.reduce((n, c) => n + c.length, 0);
    if (!this.wants(size)) return;
    this.drop(id);
    this.entries.set(id, [...chunks]);
    this.bytes += size;
    // oldest first (insertion order); a message handed out at once is long gone by then
    for (const [oldest] of this.entries) {
      if (this.bytes <= this.opts.maxBytes) break;
      this.drop(oldest);
    }
  }

  /** All `chunks` chunks of the body, or undefined when they are not all here. */
  whole(id: string, chunks: number): readonly Buffer[] | undefined {
    const entry = this.entries.get(id);
    return entry && entry.length === chunks ? entry : undefined;
  }

  chunk(id: string, n: number): Buffer | undefined {
    return this.entries.get(id)?.[n];
  }

  drop(id: string): void {
    const chunks = this.entries.get(id);
    if (!chunks) return;
    this.entries.delete(id);
    for (const c of chunks) this.bytes -= c.length;
  }

  get size(): { messages: number; bytes: number } {
    return { messages: this.entries.size, bytes: this.bytes };
  }
}
