/**
 * Watches a file the receiver reads its settings from (the blocklist, the spam model) so a change
 * takes effect without a restart or the HTTP API. Polling (fs.watchFile, once a second) rather
 * than inotify: it sees a file that appears, goes, or is replaced by a rename (a new inode), on
 * any filesystem, and it keeps no process alive.
 */
import { unwatchFile, watchFile, type Stats } from 'node:fs';

const POLL_MS = 1000;

/** Calls onChange when the file's content, size or inode changes, or it appears or goes; returns the stop. */
export function watchForChanges(file: string, onChange: () => void): () => void {
  const listener = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) onChange();
  };
  watchFile(file, { interval: POLL_MS, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}
