/**
 * F8b and F8c: a damaged queue stops the start, loudly, and is left exactly as it was.
 *
 * - F8b: 64 bytes overwritten at offset 10 of MANIFEST-* → exit ≠ 0 within 5 s, one stderr line
 *   saying "corrupt" and naming the directory; every data file's sha256 unchanged (no repair, no
 *   deletion). LevelDB rotates its own text log (LOG → LOG.old) on every open attempt, before it
 *   reads anything; those two files are its diary, not the queue, and are left out of the
 *   comparison.
 * - F8c: CURRENT deleted → exit ≠ 0, every file unchanged (Sluice refuses before LevelDB
 *   touches the directory), never an empty queue: with CURRENT put back, all 100 messages are
 *   there.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, openSync, readdirSync, rmSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { budgetMs } from '../helpers/budget.js';
import { makeAppDir } from '../helpers/app-dir.js';
import { runExpectingExit, startSluice, type RunResult } from '../helpers/sluice-child.js';
import { fingerprint } from '../helpers/files.js';
import { seededRandom, faultSeed } from '../helpers/seeded.js';
import { submit } from '../helpers/submit.js';
import { verifyQueue } from '../helpers/verify-queue.js';

let source: string;
let acked: Map<string, string>;
const cleanup: string[] = [];

before(async () => {
  source = makeAppDir({}, 'sluice-f8bc-');
  cleanup.push(source);
  const m = await startSluice(source);
  try {
    const r = await submit({ target: () => ({ host: '127.0.0.1', port: m.smtpPort }), runId: 'f8', count: 100, concurrency: 10, maxRetries: 0 });
    acked = r.acked;
    assert.equal(acked.size, 100);
  } finally {
    assert.deepEqual(await m.stop(), { code: 0, signal: null });
  }
});

after(() => {
  for (const dir of cleanup) rmSync(dir, { recursive: true, force: true });
});

/** A copy of the populated app dir (same config, its own queue). */
function copyAppDir(): { dir: string; queue: string } {
  const dir = makeAppDir({}, 'sluice-f8bc-');
  cleanup.push(dir);
  cpSync(path.join(source, 'data'), path.join(dir, 'data'), { recursive: true });
  return { dir, queue: path.join(dir, 'data', 'queue') };
}

function assertOneLineFailure(r: RunResult, queue: string, word: RegExp): void {
  assert.equal(r.timedOut, false, 'sluice kept running on a damaged queue');
  assert.notEqual(r.code, 0);
  assert.ok(r.elapsedMs <= budgetMs(5000), `took ${r.elapsedMs} ms to fail (budget ${budgetMs(5000)} ms)`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.ok(lines[0]!.includes(queue), `names the queue dir: ${lines[0]}`);
  assert.match(lines[0]!, word);
  assert.doesNotMatch(r.stdout, /"event":"STARTED"/);
}

test('F8b: a corrupt MANIFEST stops the start with one "corrupt" line; no data file changes', { timeout: 60_000 }, async (t) => {
  const { dir, queue } = copyAppDir();
  const manifest = readdirSync(queue).find((f) => f.startsWith('MANIFEST-'));
  assert.ok(manifest, 'the queue has a MANIFEST');
  const seed = faultSeed();
  const rand = seededRandom(seed);
  const garbage = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256)));
  const fd = openSync(path.join(queue, manifest), 'r+');
  writeSync(fd, garbage, 0, 64, 10);
  closeSync(fd);
  const isInfoLog = (name: string) => name === 'LOG' || name === 'LOG.old';
  const beforeStart = fingerprint(queue, isInfoLog);

  const r = await runExpectingExit(dir);
  t.diagnostic(`seed=${seed} exit ${r.code} after ${r.elapsedMs} ms: ${r.stderr.trim()}`);
  assertOneLineFailure(r, queue, /corrupt/);
  assert.deepEqual(fingerprint(queue, isInfoLog), beforeStart, 'no repair, no deletion');
});

test('F8c: a queue without CURRENT stops the start; every file stays, and it is never an empty queue', { timeout: 60_000 }, async (t) => {
  const { dir, queue } = copyAppDir();
  const current = path.join(dir, 'CURRENT.saved');
  cpSync(path.join(queue, 'CURRENT'), current);
  unlinkSync(path.join(queue, 'CURRENT'));
  const beforeStart = fingerprint(queue);
  assert.ok(Object.keys(beforeStart).some((f) => /\.(log|ldb)$/.test(f)), 'the queue has data files');

  const r = await runExpectingExit(dir);
  t.diagnostic(`exit ${r.code} after ${r.elapsedMs} ms: ${r.stderr.trim()}`);
  assertOneLineFailure(r, queue, /no CURRENT/);
  assert.deepEqual(fingerprint(queue), beforeStart, 'every file unchanged, nothing created');

  // the data was never touched: with CURRENT back, all 100 messages are whole
  cpSync(current, path.join(queue, 'CURRENT'));
  const report = await verifyQueue(queue, acked, 2);
  assert.equal(report.stored, 100);
  assert.deepEqual(report.problems, []);
});
