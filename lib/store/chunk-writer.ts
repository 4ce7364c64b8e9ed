/**
 * Streams bytes into a LevelDB as numbered chunks of at most `chunkSizeBytes`, so that memory per
 * stream is one chunk whatever the size. A chunk is put (unsynced, invisible until its owner's
 * commit names it) when the next piece would not fit; the tail goes into the owner's commit batch
 * (`finalOps`), so a small stream costs no write of its own.
 *
 * Chunk boundaries follow the pieces as they arrive (socket reads; cut only where a piece is
 * larger than a chunk): a chunk made of one piece is that piece, not a copy. Readers only count
 * chunks.
 *
 * Every write goes through the store's WriteGuard, and all of a stream's chunks must be of one
 * database generation: chunks put before a reopen may not have survived it.
 */
import type { BatchOp } from './group-commit.js';
import type { LevelDb } from './level-db.js';

/** The part of a WriteGuard a writer needs (a store may count or wrap the writes). */
export interface GuardedWrites {
  readonly generation: number;
  write<T>(op: () => Promise<T>): Promise<T>;
}

export class ChunkWriter {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private next = 0;
  /** bytes written so far */
  bytes = 0;
  /** the database generation of the first chunk put (undefined: none put yet) */
  generation: number | undefined;

  constructor(
    private readonly db: LevelDb,
    private readonly guard: GuardedWrites,
    private readonly key: (n: number) => string,
    private readonly chunkSizeBytes: number,
  ) {}

  /** How many chunks the stream has, its tail included. */
  get chunks(): number {
    return this.next + (this.partsBytes > 0 ? 1 : 0);
  }

  /** Whether any chunk was put before the commit (there is something to clean up on failure). */
  get putAny(): boolean {
    return this.generation !== undefined;
  }

  async write(chunk: Buffer): Promise<void> {
    if (!chunk.length) return;
    this.bytes += chunk.length;
    // a piece larger than a chunk is cut into equal views (64 KB + 1 byte would leave a 1-byte
    // view that the next piece would then be copied onto)
    const cuts = Math.ceil(chunk.length / this.chunkSizeBytes);
    const step = Math.ceil(chunk.length / cuts);
    for (let at = 0; at < chunk.length; at += step) {
      const piece = cuts === 1 ? chunk : chunk.subarray(at, at + step);
      if (this.partsBytes + piece.length > this.chunkSizeBytes) await this.putParts();
      this.parts.push(piece);
      this.partsBytes += piece.length;
    }
  }

  /** The batch operation for the buffered tail (none when it is empty). */
  finalOps(): BatchOp[] {
    if (!this.partsBytes) return [];
    return [{ type: 'put', key: this.key(this.next++), value: this.joinParts() }];
  }

  private joinParts(): Buffer {
    const chunk = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
    this.parts = [];
    this.partsBytes = 0;
    return chunk;
  }

  private async putParts(): Promise<void> {
    const chunk = this.joinParts();
    this.generation ??= this.guard.generation;
    if (this.generation !== this.guard.generation) throw new Error('the database was reopened while the stream was written');
    await this.guard.write(() => this.db.put(this.key(this.next++), chunk));
  }
}
