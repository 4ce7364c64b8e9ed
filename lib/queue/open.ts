/**
 * Opens the queue's LevelDB safely. An existing queue is opened with createIfMissing:false, so a
 * damaged one (CURRENT lost) fails loudly instead of LevelDB starting an empty queue and deleting
 * the old files. Lock, corruption and permission errors become one clear line each, naming the
 * directory (LevelDB puts the reason in `err.cause`: LEVEL_LOCKED, LEVEL_CORRUPTION, or
 * LEVEL_IO_ERROR with the OS's text).
 *
 * Nothing here repairs or deletes: a corrupt queue is the operator's call (ZoneMTA's stance too).
 */
import { ClassicLevel } from 'classic-level';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';

export type QueueDb = ClassicLevel<string, Buffer>;

const DATA_FILE = /^(CURRENT|MANIFEST-\d+|\d+\.(log|ldb|sst))$/;
/** LevelDB's memtable size (see the open call for why not the default 4 MB). */
const WRITE_BUFFER_BYTES = 8 * 1024 * 1024;
/**
 * LevelDB's cache of uncompressed blocks (its default is 8 MB). Fresh mail is delivered from
 * memory, so what is read back from disk is the schedule index, rows and the bodies of retries:
 * 2 MB held the relay benchmark's hits, and the 6 MB saved count towards its memory target.
 */
const BLOCK_CACHE_BYTES = 2 * 1024 * 1024;

export class QueueOpenError extends Error {
  constructor(message: string, readonly code: 'LOCKED' | 'CORRUPT' | 'DAMAGED' | 'ACCESS' | 'OTHER') {
    super(message);
    this.name = 'QueueOpenError';
  }
}

export async function openQueueDb(dir: string): Promise<QueueDb> {
  let existing: string[] = [];
  try {
    existing = existsSync(dir) ? readdirSync(dir) : [];
  } catch (err) {
    throw accessError(dir, err);
  }
  // LOCK and LOG are made by every open, even a failed one; only these hold data
  const isNew = !existing.some((name) => DATA_FILE.test(name));
  if (!isNew && !existing.includes('CURRENT')) {
    throw new QueueOpenError(
      `queue ${dir} is damaged: it has files but no CURRENT file, so LevelDB cannot find its data. ` +
        'Sluice will not start on it (an empty queue would hide the lost mail). Restore CURRENT from a backup, ' +
        'or move the directory aside to start with an empty queue.',
      'DAMAGED',
    );
  }
  if (isNew) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw accessError(dir, err);
    }
  }
  const db = new ClassicLevel<string, Buffer>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'buffer',
    createIfMissing: isNew,
    errorIfExists: false,
    // Bodies pass through the queue: with LevelDB's 4 MB memtable every 4 MB of mail became an L0
    // file, and past 8 of them LevelDB slows each write by 1 ms while compaction catches up. A
    // 16 MB memtable took 100 KB messages of incompressible content with less CPU and faster
    // (bench/README.md; 32 MB gained a little more but let a 50 MB message grow RSS by 20 MB
    // against the 32 MB budget). Since fresh mail goes to workers from memory, relaying no longer
    // reads bodies back, and 8 MB relayed 100 KB messages with the same CPU as 16 MB and ~15 MB
    // less RSS (two memtables live during a flush): the memory target of the relay benchmark.
    writeBufferSize: WRITE_BUFFER_BYTES,
    cacheSize: BLOCK_CACHE_BYTES,
  });
  try {
    await db.open();
  } catch (err) {
    throw describeOpenError(dir, err);
  }
  return db;
}

function describeOpenError(dir: string, err: unknown): QueueOpenError {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  const cause = e.cause?.code;
  const detail = oneLine(e.cause?.message ?? e.message ?? String(err));
  if (cause === 'LEVEL_LOCKED') {
    return new QueueOpenError(`queue ${dir} is locked: another process (another Sluice?) holds its LOCK file. Stop that process first; one queue has one master.`, 'LOCKED');
  }
  if (cause === 'LEVEL_CORRUPTION') {
    return new QueueOpenError(
      `queue ${dir} is corrupt (LevelDB: ${detail}). Sluice changed nothing and will not start on it. ` +
        'Copy the directory somewhere safe, then either repair the copy with classic-level\'s ClassicLevel.repair() and point queue.path at it, ' +
        'or move the directory aside to start with an empty queue.',
      'CORRUPT',
    );
  }
  if (/read-only file system|EROFS/i.test(detail)) {
    return new QueueOpenError(`queue ${dir} is on a read-only file system (LevelDB: ${detail}); Sluice needs to write there.`, 'ACCESS');
  }
  if (/permission denied|EACCES|EPERM/i.test(detail)) {
    return new QueueOpenError(`queue ${dir} is not writable (LevelDB: ${detail}); ${whoNeedsAccess()}.`, 'ACCESS');
  }
  return new QueueOpenError(`queue ${dir} cannot be opened (LevelDB: ${detail}).`, 'OTHER');
}

function accessError(dir: string, err: unknown): QueueOpenError {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is not a directory',
  };
  const reason = why[e.code ?? ''] ?? oneLine(e.message);
  const hint = e.code === 'EACCES' || e.code === 'EPERM' ? `; ${whoNeedsAccess()}` : '';
  return new QueueOpenError(`queue ${dir} cannot be read or created: ${reason} (${e.code ?? 'error'} on ${e.path ?? dir})${hint}.`, 'ACCESS');
}

function whoNeedsAccess(): string {
  const uid = process.getuid?.();
  return `the user running Sluice${uid === undefined ? '' : ` (uid ${uid})`} needs read and write access to it`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
