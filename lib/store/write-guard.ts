/**
 * Keeps one of Sluice's LevelDBs (the queue, the inbox store) trustworthy after a write failed
 * (disk full, I/O error), without a restart.
 *
 * LevelDB is not to be written to again after a failed write:
 * - a failed compaction or synced write makes every later write fail until the database is
 *   reopened (its sticky "background error"), so a full disk that is freed again would refuse
 *   mail for ever;
 * - a log write that failed half-way leaves a torn record, and records appended after it may be
 *   dropped as corrupt when the log is replayed at the next open — a 250 given for one of them
 *   would be a lie.
 *
 * So the first failed write closes the gate: writes are refused, the database is closed and
 * reopened (retrying with backoff while the disk is still full), and only then do writes pass
 * again. A reopen replays the log, keeping everything written before the failure.
 *
 * Every (re)open is a new `generation`. A commit may be acknowledged only if no write failed in
 * its generation before it completed (`spoiled`); the store then refuses it (451) and removes what
 * it wrote after the reopen, in `afterReopen`.
 */
import type { Logger } from 'pino';
import type { LevelDb } from './level-db.js';

/** Raised instead of writing while the database is being reopened after a failure. */
export class StoreUnavailableError extends Error {
  constructor(name: string) {
    super(`the ${name} database is recovering from a failed write`);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Whether a read or write failed because the database is being reopened: refused by the guard,
 * or LevelDB's "not open" for the database, or for an iterator the reopen closed under a reader
 * that was between two steps of it. Callers answer it as "try again" (HTTP 503, SMTP 451).
 */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } } | null;
  const code = (c: string | undefined) => c === 'LEVEL_DATABASE_NOT_OPEN' || c === 'LEVEL_ITERATOR_NOT_OPEN';
  return err instanceof StoreUnavailableError || code(e?.code) || code(e?.cause?.code);
}

/** First wait before a reopen, and the longest wait between two attempts. */
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

export class WriteGuard {
  /** how many times the database was opened by this process, minus one */
  generation = 0;
  private failedIn = -1;
  private recovering: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly db: LevelDb,
    private readonly logger: Logger,
    /** runs after a successful reopen, before anything is retried; a throw means "reopen again" */
    private readonly afterReopen: () => Promise<void>,
    /** what the log calls it, and its `component`: "queue", "inbox" */
    private readonly name = 'queue',
  ) {}

  get writable(): boolean {
    return !this.closed && this.failedIn !== this.generation && this.db.status === 'open';
  }

  /** True when a write failed in generation `gen`, or the database has been reopened since. */
  spoiled(gen: number): boolean {
    return this.failedIn === gen || this.generation !== gen;
  }

  /** Runs one write; a failure starts the recovery. */
  async write<T>(op: () => Promise<T>): Promise<T> {
    if (!this.writable) throw new StoreUnavailableError(this.name);
    const gen = this.generation;
    try {
      return await op();
    } catch (err) {
      this.failed(gen, err);
      throw err;
    }
  }

  /** Reports a failed write of generation `gen` (late failures of an older one are ignored). */
  failed(gen: number, err: unknown): void {
    if (this.closed || gen !== this.generation || this.failedIn === gen) return;
    this.failedIn = gen;
    this.logger.error({ err, component: this.name }, `${this.name} write failed, reopening the database before accepting more mail: ${(err as Error)?.message ?? err}`);
    void this.recover();
  }

  /** Stops recovering (the store is closing); resolves once a running attempt is over. */
  async close(): Promise<void> {
    this.closed = true;
    await this.recovering;
  }

  private recover(): Promise<void> {
    this.recovering ??= this.reopen().finally(() => (this.recovering = undefined));
    return this.recovering;
  }

  private async reopen(): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      await new Promise((r) => setTimeout(r, Math.min(FIRST_RETRY_MS * 2 ** (attempt - 1), MAX_RETRY_MS)));
      if (this.closed) return;
      try {
        if (this.db.status === 'open') await this.db.close();
        if (this.closed) return;
        // an existing database: never let LevelDB create an empty one here
        await this.db.open({ createIfMissing: false });
        this.generation++;
        await this.afterReopen();
        this.logger.warn({ component: this.name, attempts: attempt }, `${this.name} database reopened; accepting mail again`);
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 10 === 0) {
          this.logger.error({ err, component: this.name, attempts: attempt }, `${this.name} database still failing: ${(err as Error)?.message ?? err}`);
        }
        // a failure inside afterReopen spoils the new generation too
        this.failedIn = this.generation;
      }
    }
  }
}
