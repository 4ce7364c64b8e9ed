/**
 * F8a: a second master on the same app dir finds the queue locked. It must exit non-zero within
 * 5 s with one stderr line naming the queue directory and saying it is locked, while the first
 * one keeps accepting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { budgetMs } from '../helpers/budget.js';
import { makeAppDir } from '../helpers/app-dir.js';
import { runExpectingExit, startSluice } from '../helpers/sluice-child.js';
import { submit } from '../helpers/submit.js';

test('F8a: a second master on a locked queue exits non-zero with one clear line; the first keeps accepting', { timeout: 60_000 }, async () => {
  const appDir = makeAppDir({}, 'sluice-f8a-');
  const a = await startSluice(appDir);
  try {
    const b = await runExpectingExit(appDir, { timeoutMs: 10_000 });
    assert.equal(b.timedOut, false, 'the second master kept running');
    assert.notEqual(b.code, 0);
    assert.ok(b.elapsedMs <= budgetMs(5000), `B took ${b.elapsedMs} ms to give up (budget ${budgetMs(5000)} ms)`);
    const lines = b.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, `one line on stderr: ${b.stderr}`);
    assert.ok(lines[0]!.includes(path.join(appDir, 'data', 'queue')), lines[0]);
    assert.match(lines[0]!, /locked/);

    const probe = await submit({ target: () => ({ host: '127.0.0.1', port: a.smtpPort }), runId: 'f8a', count: 1, concurrency: 1, maxRetries: 0 });
    assert.equal(probe.acked.size, 1, `A still accepts: ${JSON.stringify(probe.final)}`);
    assert.ok(a.running);
    assert.deepEqual(await a.stop(), { code: 0, signal: null });
  } finally {
    a.kill('SIGKILL');
    await a.exited;
    rmSync(appDir, { recursive: true, force: true });
  }
});
