/**
 * Streams one message's body into the queue (ingest → here → QueueStore.commitMessage), on the
 * shared ChunkWriter: a chunk is put (unsynced, invisible) when the next piece would not fit, the
 * tail goes into the commit batch, so a small message costs one write in all.
 *
 * What the queue adds to a plain chunk stream:
 * - nothing is put before the id is known to be free (`idFree`): a write never lands on another
 *   message;
 * - the newest LevelDB log at the first put (`firstLog`): the commit syncs the logs LevelDB
 *   switched away from under the body (log-files.ts);
 * - the chunks of a small body are kept in memory too (`retained`), for FreshBodies: fresh mail
 *   goes to its first attempt without reading the body back.
 *
 * Created by QueueStore.bodyWriter, which hands it the database; nothing outside lib/queue sees it.
 */
import { ChunkWriter } from '../store/chunk-writer.js';
import type { BatchOp } from '../store/group-commit.js';
import type { WriteGuard } from '../store/write-guard.js';
import { keys } from './keys.js';
import type { LogFiles } from './log-files.js';
import type { QueueDb } from './open.js';

/** What a body writer needs of its store. */
export interface BodyWriterStore {
  db: QueueDb;
  guard: WriteGuard;
  logs: LogFiles;
}

export class BodyWriter {
  private readonly stream: ChunkWriter;
  private finished = false;
  /** the newest LevelDB log known when the first chunk was put: it or a later one holds it */
  firstLog: number | undefined;
  /** The body's chunks as written, while it stays within `retainUpTo` (for FreshBodies). */
  retained: Buffer[] | undefined;

  constructor(
    private readonly store: BodyWriterStore,
    readonly id: string,
    chunkSizeBytes: number,
    private readonly onDone: () => void,
    /** keep the chunks in memory too while the body is at most this big (0: never) */
    private readonly retainUpTo = 0,
    /** settles once the id is known to be free in the queue (rejects when it is not) */
    readonly idFree: Promise<void> = Promise.resolve(),
  ) {
    this.retained = retainUpTo > 0 ? [] : undefined;
    this.stream = new ChunkWriter(store.db, store.guard, (n) => keys.body(id, n), chunkSizeBytes, {
      beforePut: async () => {
        await this.idFree;
        this.firstLog ??= this.store.logs.newest;
      },
      onChunk: (chunk) => this.retain(chunk),
    });
  }

  /** bytes written so far */
  get bytes(): number {
    return this.stream.bytes;
  }

  /** How many chunks the body has, its tail included. */
  get chunks(): number {
    return this.stream.chunks;
  }

  /** the database generation the first chunk was put in (undefined: nothing put yet) */
  get generation(): number | undefined {
    return this.stream.generation;
  }

  write(chunk: Buffer): Promise<void> {
    return this.stream.write(chunk);
  }

  private retain(chunk: Buffer): void {
    if (!this.retained) return;
    if (this.stream.bytes > this.retainUpTo) {
      this.retained = undefined;
      return;
    }
    // a small view of a big buffer (a socket read) would keep all of that buffer alive
    this.retained.push(chunk.buffer.byteLength > chunk.length * 2 ? Buffer.from(chunk) : chunk);
  }

  /**
   * Everything written so far, in order: the chunks already put (unsynced, but readable in this
   * process), then the buffered tail. For plugins that must see the stored message before its
   * commit (message:store); after the commit the same read covers the whole body.
   */
  async *read(): AsyncGenerator<Buffer> {
    const written = this.stream.putCount;
    const tail = this.stream.tail();
    for (let n = 0; n < written; n++) {
      const chunk = await this.store.db.get(keys.body(this.id, n));
      if (chunk === undefined) throw new Error(`body chunk ${n} of ${this.id} is missing`);
      yield chunk;
    }
    yield* tail;
  }

  /** The batch operations for the buffered tail (for the commit). */
  finalOps(): BatchOp[] {
    return this.stream.finalOps();
  }

  done(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone();
  }

  /** Throws away what was written; if that fails too, the garbage collector gets it later. */
  async discard(): Promise<void> {
    this.stream.dropTail();
    try {
      if (this.stream.putAny) await this.store.guard.write(() => this.store.db.clear(keys.bodyRange(this.id)));
    } catch {
      // the database is failing; the leftovers stay invisible and are collected later
    } finally {
      this.done();
    }
  }
}
