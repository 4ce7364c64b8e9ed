/**
 * The queue's LevelDB log files, and syncing the ones LevelDB leaves unsynced.
 *
 * Body chunks are written unsynced while a message streams in; the synced commit batch makes
 * them durable because LevelDB syncs the log the commit is appended to, and that log holds the
 * chunks written before it. When the memtable fills in between (every writeBufferSize bytes of
 * traffic, or at the commit itself), LevelDB starts a new log and closes the old one without a
 * sync: its records are durable only once its memtable has been written to a synced table, which
 * may come after the 250.
 *
 * So the store notes the newest log when a body's first chunk is written and, before the commit
 * and again after it (for a switch the commit itself caused), syncs every log from that one up
 * to the newest, before the client hears 250. A log that is gone needs nothing: LevelDB removes a
 * log only after its table and the MANIFEST naming it are synced.
 *
 * Left open: a switch caused by the commit leaves the message visible a moment before its old
 * log is synced. A power loss in that moment loses no acknowledged mail (no 250 was given) but
 * may keep a message whose first chunks are gone; its delivery then fails as incomplete.
 */
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';

const LOG_FILE = /^(\d+)\.log$/;

export class LogFiles {
  /** the highest log number seen in the directory (it only grows) */
  newest = 0;
  /** logs synced by this process (counted for tests and health) */
  synced = 0;

  constructor(private readonly dir: string) {}

  /** Reads the directory: the log numbers there, in order. */
  async scan(): Promise<number[]> {
    const numbers: number[] = [];
    for (const name of await readdir(this.dir)) {
      const m = LOG_FILE.exec(name);
      if (m) numbers.push(Number(m[1]));
    }
    numbers.sort((a, b) => a - b);
    if (numbers.length) this.newest = Math.max(this.newest, numbers[numbers.length - 1]!);
    return numbers;
  }

  /**
   * Syncs every log from number `from` up to, not including, the newest one (which the caller's
   * synced write covers). Returns the newest log number.
   */
  async syncOlder(from: number): Promise<number> {
    const numbers = await this.scan();
    for (const n of numbers) if (n >= from && n < this.newest) await this.syncLog(n);
    return this.newest;
  }

  private async syncLog(n: number): Promise<void> {
    let handle;
    try {
      // fdatasync on a read-only descriptor flushes the file's data all the same
      handle = await open(path.join(this.dir, `${String(n).padStart(6, '0')}.log`), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return; // compacted and removed
      throw err;
    }
    try {
      await handle.datasync();
      this.synced++;
    } finally {
      await handle.close();
    }
  }
}
