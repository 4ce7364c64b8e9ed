/**
 * Group commit: many messages' final batches share one synced LevelDB write. While a synced
 * write is in flight, new batches wait and then go together in the next one, so the cost of an
 * fsync is shared by everyone who arrived during the previous one. A failed write fails every
 * batch that was in it, and nothing of it is visible.
 */
import type { BatchOperation } from 'classic-level';
import type { LevelDb } from './level-db.js';
import { writeOps } from './write-ops.js';

export type BatchOp = BatchOperation<LevelDb, string, Buffer>;

interface Pending {
  ops: BatchOp[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** How well fsyncs are shared: batches (one per commit call) over synced writes. */
export interface GroupCommitStats {
  syncs: number;
  batches: number;
}

export class GroupCommitter {
  private waiting: Pending[] = [];
  private writing = false;
  /** counted so GET /health and the benchmark can show how many commits share one fsync */
  readonly stats: GroupCommitStats = { syncs: 0, batches: 0 };

  constructor(private readonly db: LevelDb) {}

  /** Resolves once `ops` are durably on disk (sync: true). */
  commit(ops: BatchOp[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ ops, resolve, reject });
      if (!this.writing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.writing = true;
    while (this.waiting.length) {
      const group = this.waiting;
      this.waiting = [];
      const ops = group.length === 1 ? group[0]!.ops : group.flatMap((p) => p.ops);
      this.stats.syncs++;
      this.stats.batches += group.length;
      try {
        await writeOps(this.db, ops, { sync: true });
        for (const p of group) p.resolve();
      } catch (err) {
        for (const p of group) p.reject(err);
      }
    }
    this.writing = false;
  }
}
