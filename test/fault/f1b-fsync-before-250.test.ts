/**
 * F1b: fsync before 250, the power-loss proxy. The master runs under strace;
 * 20 messages go in one after another; in the trace, every `250 … queued as` written to a client
 * socket must come after an fdatasync/fsync that completed since the previous 250 — by any
 * thread, since LevelDB syncs on a worker thread.
 *
 * The unit side (the batch that makes a message visible is written with { sync: true }) is in
 * test/queue/sync-commit.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeAppDir } from '../helpers/app-dir.js';
import { hasStrace, tracedRun } from '../helpers/strace.js';
import { submit } from '../helpers/submit.js';

interface SyncOrder {
  replies: number;
  /** replies with no completed sync since the previous reply */
  unsynced: string[];
  syncs: number;
}

/**
 * Reads an `strace -f -tt` log. A sync counts when it has completed (`fdatasync(21) = 0` or
 * `<... fdatasync resumed>) = 0`); a reply counts where its write starts.
 */
function checkSyncOrder(trace: string): SyncOrder {
  let syncedSinceReply = false;
  let replies = 0;
  let syncs = 0;
  const unsynced: string[] = [];
  for (const line of trace.split('\n')) {
    const sync = /\b(fdatasync|fsync)\(\d+\)\s+= 0/.test(line) || /<\.\.\. (fdatasync|fsync) resumed>.*= 0/.test(line);
    if (sync) {
      syncs++;
      syncedSinceReply = true;
      continue;
    }
    if (/\b(write|writev|sendto)\(\d+, .*"250 [^"]*queued as/.test(line)) {
      replies++;
      if (!syncedSinceReply) unsynced.push(line.slice(0, 160));
      syncedSinceReply = false;
    }
  }
  return { replies, unsynced, syncs };
}

test('F1b: every "250 queued as" is written after an fdatasync (strace, 20 messages one by one)', { timeout: 60_000, skip: !hasStrace() && 'strace is not installed (Debian package strace)' }, async (t) => {
  const t0 = Date.now();
  const trace = await tracedRun(makeAppDir({}, 'sluice-f1b-'), ['-s', '128', '-e', 'trace=fsync,fdatasync,write,writev,sendto'], async (m) => {
    const r = await submit({ target: () => ({ host: '127.0.0.1', port: m.smtpPort }), runId: 'f1b', count: 20, concurrency: 1, maxRetries: 0 });
    assert.equal(r.acked.size, 20, JSON.stringify(r.final.filter((a) => a.outcome !== '250')));
  });
  const order = checkSyncOrder(trace);
  t.diagnostic(`${order.replies} replies, ${order.syncs} syncs, ${order.unsynced.length} unsynced; ${Date.now() - t0} ms under strace`);
  assert.equal(order.replies, 20, 'found every 250 in the trace');
  assert.deepEqual(order.unsynced, [], 'a 250 went out with no sync since the previous one');
});

test('F1b checker: a 250 with no sync before it is caught', () => {
  const trace = [
    '100 10:00:00.000001 write(21, "...", 10) = 10',
    '101 10:00:00.000002 fdatasync(21 <unfinished ...>',
    '101 10:00:00.000003 <... fdatasync resumed>) = 0',
    '100 10:00:00.000004 write(25, "250 2.0.0 Ok: queued as 01a2", 30) = 30',
    '100 10:00:00.000005 write(26, "250 2.0.0 Ok: queued as 01a3", 30) = 30',
  ].join('\n');
  const order = checkSyncOrder(trace);
  assert.equal(order.replies, 2);
  assert.equal(order.unsynced.length, 1);
  assert.match(order.unsynced[0]!, /01a3/);
});
