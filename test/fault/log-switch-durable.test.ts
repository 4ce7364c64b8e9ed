/**
 * Issue 8, item 4: "250 means durable" across a LevelDB log switch. Body chunks are written
 * unsynced while the message streams in, and the synced commit batch makes them durable only
 * if they sit in the same log file: LevelDB syncs the current log on a synced write. When the
 * memtable fills in between, LevelDB starts a new log and closes the old one without a sync;
 * the old log's records are durable only once its memtable is in a synced table file.
 *
 * The master runs under `strace -f -y` (every thread, file descriptors shown with their paths)
 * and takes one 20 MB message. At the moment the `250 … queued as` is written, every write to a
 * LevelDB log file before it must be durable: followed by a completed fsync/fdatasync of that
 * file, or the file removed by LevelDB after a table file was synced (its records went into that
 * table; LevelDB removes a log only then).
 *
 * With 64 KB chunks where the switch falls is a matter of timing (a switch early in the message
 * leaves time for the old log's compaction); queue.chunkSize = "16MB" makes it certain: the first
 * 16 MB are one unsynced put that overfills the 8 MB memtable, so the commit batch itself starts
 * a new log. Before the fix the trace showed, at the 250: "000003.log: 16.0 MB, NOT SYNCED".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { makeAppDir } from '../helpers/app-dir.js';
import { hasStrace, tracedRun } from '../helpers/strace.js';
import { submit } from '../helpers/submit.js';

interface LogFile {
  lastWrite: number;
  lastSync: number;
  removed: number;
  bytes: number;
}

interface Durability {
  /** line number of the 250 in the trace (-1: not found) */
  replyAt: number;
  logs: Map<string, LogFile>;
  /** log files holding bytes written before the 250 that no sync or table covers */
  unsynced: string[];
}

/**
 * Reads an `strace -f -tt -y` trace. Calls may be split into `<unfinished ...>` and
 * `<... NAME resumed>` lines per thread; a sync counts where it completed with 0, a write and a
 * removal where they start (conservative for the write: its bytes are there from then on).
 */
function checkDurability(trace: string): Durability {
  const logs = new Map<string, LogFile>();
  const log = (file: string) => logs.get(file) ?? logs.set(file, { lastWrite: -1, lastSync: -1, removed: -1, bytes: 0 }).get(file)!;
  /** per thread: the file of a sync that has not returned yet */
  const pendingSync = new Map<string, string>();
  let lastTableSync = -1;
  let replyAt = -1;
  const lines = trace.split('\n');
  const synced = (file: string, at: number) => {
    if (file.endsWith('.log')) log(file).lastSync = at;
    else if (/\.(ldb|sst)$/.test(file)) lastTableSync = at;
  };
  for (let i = 0; i < lines.length && replyAt < 0; i++) {
    const line = lines[i]!;
    const pid = /^(\d+)\s/.exec(line)?.[1] ?? '';
    let m: RegExpExecArray | null;
    if ((m = /\b(?:fdatasync|fsync)\(\d+<([^>]+)>\)\s+= 0/.exec(line))) synced(m[1]!, i);
    else if ((m = /\b(?:fdatasync|fsync)\(\d+<([^>]+)> <unfinished/.exec(line))) pendingSync.set(pid, m[1]!);
    else if (/<\.\.\. (?:fdatasync|fsync) resumed>.*= 0/.test(line) && pendingSync.has(pid)) {
      synced(pendingSync.get(pid)!, i);
      pendingSync.delete(pid);
    } else if ((m = /\bwrite\(\d+<([^>]+\.log)>, .*?(?:= (\d+)|<unfinished)/.exec(line))) {
      const f = log(m[1]!);
      f.lastWrite = i;
      f.bytes += Number(m[2] ?? 0);
    } else if ((m = /\bunlink(?:at)?\((?:AT_FDCWD, |\d+<[^>]*>, )?"([^"]+\.log)"/.exec(line))) {
      const f = log(m[1]!);
      // LevelDB removes a log once its memtable is in a synced table and the MANIFEST says so
      if (lastTableSync > f.lastWrite) f.removed = i;
    } else if (/\b(?:write|writev|sendto)\(\d+(?:<[^>]*>)?, .*"250 [^"]*queued as/.test(line)) replyAt = i;
  }
  const unsynced: string[] = [];
  for (const [file, f] of logs) {
    if (f.lastWrite < 0 || f.lastSync > f.lastWrite || f.removed >= 0) continue;
    unsynced.push(`${path.basename(file)} (last write at line ${f.lastWrite}, last sync ${f.lastSync < 0 ? 'never' : `at line ${f.lastSync}`})`);
  }
  return { replyAt, logs, unsynced };
}

const BODY_BYTES = 20 * 1024 * 1024;

test('a 20 MB message: every byte LevelDB logged is synced (or in a synced table) before the 250', { timeout: 120_000, skip: !hasStrace() && 'strace is not installed (Debian package strace)' }, async (t) => {
  const trace = await tracedRun(makeAppDir({ queue: { chunkSize: '16MB' } }, 'sluice-logswitch-'), ['-y', '-s', '48', '-e', 'trace=write,writev,sendto,fsync,fdatasync,unlink,unlinkat'], async (m) => {
    const r = await submit({ target: () => ({ host: '127.0.0.1', port: m.smtpPort }), runId: 'logswitch', count: 1, concurrency: 1, maxRetries: 0, bodyBytes: BODY_BYTES, randomBody: true, timeoutMs: 60_000 });
    assert.equal(r.acked.size, 1, JSON.stringify(r.final));
  });
  const d = checkDurability(trace);
  const summary = [...d.logs].map(([f, l]) => `${path.basename(f)}: ${(l.bytes / 1048576).toFixed(1)} MB, ${l.lastSync > l.lastWrite ? 'synced' : l.removed >= 0 ? 'in a synced table' : 'NOT SYNCED'}`);
  t.diagnostic(`log files before the 250: ${summary.join('; ')}`);
  assert.ok(d.replyAt >= 0, 'found the 250 in the trace');
  assert.ok(d.logs.size >= 2, `the message spanned a log switch (${d.logs.size} log files written)`);
  assert.deepEqual(d.unsynced, [], 'log files with unsynced bytes when the 250 went out');
});

test('log switch checker: an old log neither synced nor removed is caught; a synced one or one in a synced table is not', () => {
  const trace = [
    '10 10:00:00.000001 write(12</q/000003.log>, "a"..., 65536) = 65536',
    '11 10:00:00.000002 write(14</q/000005.log>, "b"..., 65536) = 65536',
    '10 10:00:00.000003 write(15</q/000007.log>, "c"..., 65536) = 65536',
    '12 10:00:00.000004 fdatasync(16</q/000006.ldb> <unfinished ...>',
    '12 10:00:00.000005 <... fdatasync resumed>) = 0',
    '12 10:00:00.000006 unlink("/q/000005.log") = 0',
    '10 10:00:00.000007 write(15</q/000008.log>, "d"..., 100) = 100',
    '13 10:00:00.000008 fdatasync(15</q/000008.log>) = 0',
    '10 10:00:00.000009 write(25<TCP:[1]>, "250 2.0.0 Ok: queued as 01a2", 30) = 30',
  ].join('\n');
  const d = checkDurability(trace);
  assert.equal(d.replyAt, 8);
  assert.deepEqual(d.unsynced.map((u) => u.split(' ')[0]), ['000003.log', '000007.log']);
});
