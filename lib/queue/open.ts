/**
 * Opens the queue's LevelDB (lib/store/level-db.ts does the safe open and the clear errors) with
 * the queue's own tuning.
 */
import { openLevelDb, StoreOpenError, type LevelDb } from '../store/level-db.js';

export type QueueDb = LevelDb;
/** A queue that cannot be opened: one clear line, and `sluice run` exits 1. */
export { StoreOpenError as QueueOpenError };

/**
 * LevelDB's memtable (two are live while one is flushed). Bodies pass through the queue, and when
 * relaying read them back from disk a 4 MB memtable made an L0 file of every 4 MB of mail: past 8
 * of them LevelDB slowed each write by 1 ms while compaction caught up, so it was 16 MB. Fresh
 * mail now goes to workers from memory and a delivered message's keys are deleted soon after, and
 * LevelDB's own 4 MB relays 2 KB and 100 KB messages at the same rate and CPU as 8 or 16 MB, with
 * 4-7 MB less PSS (bench/README.md, "Memory under load": the relay benchmark's memory target).
 */
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;
/**
 * LevelDB's cache of uncompressed blocks (its default is 8 MB). Fresh mail is delivered from
 * memory, so what is read back from disk is the schedule index, rows and the bodies of retries:
 * 2 MB held the relay benchmark's hits, and the 6 MB saved count towards its memory target.
 */
const BLOCK_CACHE_BYTES = 2 * 1024 * 1024;

export function openQueueDb(dir: string): Promise<QueueDb> {
  return openLevelDb(dir, { name: 'queue', pathKey: 'queue.path', writeBufferBytes: WRITE_BUFFER_BYTES, cacheBytes: BLOCK_CACHE_BYTES });
}
