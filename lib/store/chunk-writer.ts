/**
 * Streams bytes into a LevelDB as numbered chunks of at most `chunkSizeBytes`, so that memory per
 * stream is one chunk whatever the size. A chunk is put (unsynced, invisible until its owner's
 * commit names it) when the next piece would not fit; the tail goes into the owner's commit batch
 * (`finalOps`), so a small stream costs no write of its own. Both stores stream through it: the
 * queue's message bodies (queue/body-writer.ts) and the inbox's raw messages.
 *
 * Chunk boundaries follow the pieces as they arrive (socket reads; cut only where a piece is
 * larger than a chunk): a chunk made of one piece is that piece, not a copy. Joining pieces into
 * fixed-size chunks copied every body once more and left the copies to V8's major collections
 * (bench/README.md). Readers only count chunks.
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

/** What an owner does with each chunk before it is put or handed to the commit. */
export interface ChunkHooks {
  /** before a chunk is put: may wait (the owner's id check) or throw (nothing is put then) */
  beforePut?(chunk: Buffer): Promise<void> | void;
  /** every chunk, put or in the tail, in order */
  onChunk?(chunk: Buffer): void;
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
    private readonly hooks: ChunkHooks = {},
  ) {}

  /** How many chunks the stream has, its tail included. */
  get chunks(): number {
    return this.next + (this.partsBytes > 0 ? 1 : 0);
  }

  /** How many chunks were put so far (the tail not included). */
  get putCount(): number {
    return this.next;
  }

  /** Whether any chunk was put before the commit (there is something to clean up on failure). */
  get putAny(): boolean {
    return this.generation !== undefined;
  }

  /** The buffered tail's pieces, in order (not yet put). */
  tail(): Buffer[] {
    return [...this.parts];
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
    const tail = this.joinParts();
    this.hooks.onChunk?.(tail);
    return [{ type: 'put', key: this.key(this.next++), value: tail }];
  }

  /** Forgets the buffered tail (the stream is being thrown away). */
  dropTail(): void {
    this.parts = [];
    this.partsBytes = 0;
  }

  private joinParts(): Buffer {
    const chunk = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsBytes);
    this.parts = [];
    this.partsBytes = 0;
    return chunk;
  }

  private async putParts(): Promise<void> {
    const chunk = this.joinParts();
    await this.hooks.beforePut?.(chunk);
    this.generation ??= this.guard.generation;
    if (this.generation !== this.guard.generation) throw new Error('the database was reopened while the stream was written');
    this.hooks.onChunk?.(chunk);
    await this.guard.write(() => this.db.put(this.key(this.next++), chunk));
  }
}
