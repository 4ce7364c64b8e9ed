/**
 * Opens the queue's LevelDB (lib/store/level-db.ts does the safe open and the clear errors) with
 * the queue's own tuning.
 */
import { openLevelDb, StoreOpenError, type LevelDb } from '../store/level-db.js';

export type QueueDb = LevelDb;
/** A queue that cannot be opened: one clear line, and `sluice run` exits 1. */
export { StoreOpenError as QueueOpenError };

/**
 * LevelDB's memtable. Bodies pass through the queue: with LevelDB's 4 MB memtable every 4 MB of
 * mail became an L0 file, and past 8 of them LevelDB slows each write by 1 ms while compaction
 * catches up. A 16 MB memtable took 100 KB messages of incompressible content with less CPU and
 * faster (bench/README.md; 32 MB gained a little more but let a 50 MB message grow RSS by 20 MB
 * against the 32 MB budget). Since fresh mail goes to workers from memory, relaying no longer
 * reads bodies back, and 8 MB relayed 100 KB messages with the same CPU as 16 MB and ~15 MB less
 * RSS (two memtables live during a flush): the memory target of the relay benchmark.
 */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024;
/**
 * LevelDB's cache of uncompressed blocks (its default is 8 MB). Fresh mail is delivered from
 * memory, so what is read back from disk is the schedule index, rows and the bodies of retries:
 * 2 MB held the relay benchmark's hits, and the 6 MB saved count towards its memory target.
 */
const BLOCK_CACHE_BYTES = 2 * 1024 * 1024;

export function openQueueDb(dir: string): Promise<QueueDb> {
  return openLevelDb(dir, { name: 'queue', pathKey: 'queue.path', writeBufferBytes: WRITE_BUFFER_BYTES, cacheBytes: BLOCK_CACHE_BYTES });
}
