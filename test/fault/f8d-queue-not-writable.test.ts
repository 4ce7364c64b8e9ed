/**
 * F8d: a queue directory Sluice may not write. Root ignores permissions, so the master runs as
 * `nobody` (setpriv) with the queue owned by root: exit ≠ 0 within 5 s and one stderr line that
 * names the directory and says why. Also a queue on a file system mounted read-only (EROFS).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { budgetMs } from '../helpers/budget.js';
import { makeAppDir } from '../helpers/app-dir.js';
import { runExpectingExit, startSluice, type RunResult } from '../helpers/sluice-child.js';
import { submit } from '../helpers/submit.js';
import { mountTmpfs } from '../helpers/tmpfs.js';

const AS_NOBODY = ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'];
const isRoot = process.getuid?.() === 0;

function assertOneLine(r: RunResult, queue: string, why: RegExp): void {
  assert.equal(r.timedOut, false, 'sluice kept running');
  assert.notEqual(r.code, 0);
  assert.ok(r.elapsedMs <= budgetMs(5000), `took ${r.elapsedMs} ms to fail (budget ${budgetMs(5000)} ms)`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
  assert.ok(lines[0]!.includes(queue), `names the queue dir: ${lines[0]}`);
  assert.match(lines[0]!, why);
}

/** An app dir holding a queue with a few messages, made by a normal (root) run. */
async function populated(dir = makeAppDir({}, 'sluice-f8d-')): Promise<{ dir: string; queue: string }> {
  const m = await startSluice(dir);
  try {
    const r = await submit({ target: () => ({ host: '127.0.0.1', port: m.smtpPort }), runId: 'f8d', count: 5, concurrency: 1, maxRetries: 0 });
    assert.equal(r.acked.size, 5, JSON.stringify(r.final));
    assert.deepEqual(await m.stop(), { code: 0, signal: null });
  } finally {
    m.kill('SIGKILL');
    await m.exited;
  }
  return { dir, queue: path.join(dir, 'data', 'queue') };
}

test('F8d: run as nobody, a root-owned 0500 queue dir stops the start with one clear line', { timeout: 60_000, skip: !isRoot && 'needs root to set up the permissions' }, async (t) => {
  const { dir, queue } = await populated();
  try {
    chmodSync(path.join(dir, 'data'), 0o755);
    chmodSync(queue, 0o500);
    const r = await runExpectingExit(dir, { wrap: AS_NOBODY });
    t.diagnostic(`exit ${r.code}: ${r.stderr.trim()}`);
    assertOneLine(r, queue, /permission denied/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('F8d: run as nobody, a readable but not writable queue (root-owned 0555) stops the start', { timeout: 60_000, skip: !isRoot && 'needs root to set up the permissions' }, async (t) => {
  const { dir, queue } = await populated();
  try {
    chmodSync(path.join(dir, 'data'), 0o755);
    chmodSync(queue, 0o555);
    const r = await runExpectingExit(dir, { wrap: AS_NOBODY });
    t.diagnostic(`exit ${r.code}: ${r.stderr.trim()}`);
    assertOneLine(r, queue, /not writable.*[Pp]ermission denied/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('F8d: run as nobody, a queue dir that cannot be created (parent root-owned 0500) stops the start', { timeout: 60_000, skip: !isRoot && 'needs root to set up the permissions' }, async (t) => {
  const dir = makeAppDir({}, 'sluice-f8d-');
  try {
    mkdirSync(path.join(dir, 'data'));
    chownSync(path.join(dir, 'data'), 0, 0);
    chmodSync(path.join(dir, 'data'), 0o500);
    const queue = path.join(dir, 'data', 'queue');
    const r = await runExpectingExit(dir, { wrap: AS_NOBODY });
    t.diagnostic(`exit ${r.code}: ${r.stderr.trim()}`);
    assertOneLine(r, queue, /permission denied/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('F8d: a queue on a file system remounted read-only stops the start with one clear line (EROFS)', { timeout: 60_000 }, async (t) => {
  const dir = makeAppDir({}, 'sluice-f8d-');
  // big enough for the free-space rule at MAIL FROM (1.5 × the default 25 MB maxSize)
  const disk = mountTmpfs(path.join(dir, 'data'), 64);
  if (typeof disk === 'string') {
    rmSync(dir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  try {
    const { queue } = await populated(dir);
    disk.readOnly();
    const r = await runExpectingExit(dir);
    t.diagnostic(`exit ${r.code}: ${r.stderr.trim()}`);
    assertOneLine(r, queue, /read-only file system/);
  } finally {
    disk.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
});
