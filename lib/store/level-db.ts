/**
 * Opens a LevelDB of Sluice's (the queue, the inbox store) safely. An existing database is opened
 * with createIfMissing:false, so a damaged one (CURRENT lost) fails loudly instead of LevelDB
 * starting empty and deleting the old files. Lock, corruption and permission errors become one
 * clear line each, naming the store and its directory (LevelDB puts the reason in `err.cause`:
 * LEVEL_LOCKED, LEVEL_CORRUPTION, or LEVEL_IO_ERROR with the OS's text).
 *
 * Nothing here repairs or deletes: a corrupt store is the operator's call (ZoneMTA's stance too).
 */
import { ClassicLevel } from 'classic-level';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';

export type LevelDb = ClassicLevel<string, Buffer>;

export interface LevelDbOptions {
  /** what the messages call it: "queue", "inbox store" */
  name: string;
  /** the config key of its path, for the repair hint */
  pathKey: string;
  /** LevelDB's memtable size */
  writeBufferBytes: number;
  /** LevelDB's cache of uncompressed blocks */
  cacheBytes: number;
}

const DATA_FILE = /^(CURRENT|MANIFEST-\d+|\d+\.(log|ldb|sst))$/;

export class StoreOpenError extends Error {
  constructor(message: string, readonly code: 'LOCKED' | 'CORRUPT' | 'DAMAGED' | 'ACCESS' | 'OTHER') {
    super(message);
    this.name = 'StoreOpenError';
  }
}

export async function openLevelDb(dir: string, opts: LevelDbOptions): Promise<LevelDb> {
  const { name } = opts;
  let existing: string[] = [];
  try {
    existing = existsSync(dir) ? readdirSync(dir) : [];
  } catch (err) {
    throw accessError(name, dir, err);
  }
  // LOCK and LOG are made by every open, even a failed one; only these hold data
  const isNew = !existing.some((file) => DATA_FILE.test(file));
  if (!isNew && !existing.includes('CURRENT')) {
    throw new StoreOpenError(
      `${name} ${dir} is damaged: it has files but no CURRENT file, so LevelDB cannot find its data. ` +
        `Sluice will not start on it (an empty ${name} would hide the lost mail). Restore CURRENT from a backup, ` +
        `or move the directory aside to start with an empty ${name}.`,
      'DAMAGED',
    );
  }
  if (isNew) {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw accessError(name, dir, err);
    }
  }
  const db = new ClassicLevel<string, Buffer>(dir, {
    keyEncoding: 'utf8',
    valueEncoding: 'buffer',
    createIfMissing: isNew,
    errorIfExists: false,
    writeBufferSize: opts.writeBufferBytes,
    cacheSize: opts.cacheBytes,
  });
  try {
    await db.open();
  } catch (err) {
    throw describeOpenError(opts, dir, err);
  }
  return db;
}

function describeOpenError({ name, pathKey }: LevelDbOptions, dir: string, err: unknown): StoreOpenError {
  const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  const cause = e.cause?.code;
  const detail = oneLine(e.cause?.message ?? e.message ?? String(err));
  if (cause === 'LEVEL_LOCKED') {
    return new StoreOpenError(`${name} ${dir} is locked: another process (another Sluice?) holds its LOCK file. Stop that process first; one ${name} has one master.`, 'LOCKED');
  }
  if (cause === 'LEVEL_CORRUPTION') {
    return new StoreOpenError(
      `${name} ${dir} is corrupt (LevelDB: ${detail}). Sluice changed nothing and will not start on it. ` +
        `Copy the directory somewhere safe, then either repair the copy with classic-level's ClassicLevel.repair() and point ${pathKey} at it, ` +
        `or move the directory aside to start with an empty ${name}.`,
      'CORRUPT',
    );
  }
  if (/read-only file system|EROFS/i.test(detail)) {
    return new StoreOpenError(`${name} ${dir} is on a read-only file system (LevelDB: ${detail}); Sluice needs to write there.`, 'ACCESS');
  }
  if (/permission denied|EACCES|EPERM/i.test(detail)) {
    return new StoreOpenError(`${name} ${dir} is not writable (LevelDB: ${detail}); ${whoNeedsAccess()}.`, 'ACCESS');
  }
  return new StoreOpenError(`${name} ${dir} cannot be opened (LevelDB: ${detail}).`, 'OTHER');
}

function accessError(name: string, dir: string, err: unknown): StoreOpenError {
  const e = err as NodeJS.ErrnoException;
  const why: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is not a directory',
  };
  const reason = why[e.code ?? ''] ?? oneLine(e.message);
  const hint = e.code === 'EACCES' || e.code === 'EPERM' ? `; ${whoNeedsAccess()}` : '';
  return new StoreOpenError(`${name} ${dir} cannot be read or created: ${reason} (${e.code ?? 'error'} on ${e.path ?? dir})${hint}.`, 'ACCESS');
}

function whoNeedsAccess(): string {
  const uid = process.getuid?.();
  return `the user running Sluice${uid === undefined ? '' : ` (uid ${uid})`} needs read and write access to it`;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
