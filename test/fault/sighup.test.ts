/**
 * Issue 8, item 5: SIGHUP (a closed terminal, `kill -HUP`, a reload) must not kill Sluice.
 * Node's default for SIGHUP is to exit at once, without the clean stop; the master reloads its
 * config instead (an unchanged one: nothing to apply, no worker replaced), and a delivery worker
 * that gets the signal too (a hangup reaches the whole process group) ignores it. Then SIGTERM
 * still stops everything cleanly. The reload itself is tested in test/app/reload.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { makeAppDir } from '../helpers/app-dir.js';
import { startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { submit } from '../helpers/submit.js';
import { waitFor } from '../helpers/delivery-kit.js';

test('SIGHUP to the master and its worker is harmless: an unchanged config reloads, both stay, mail is still accepted, SIGTERM then exits 0', { timeout: 60_000 }, async () => {
  const appDir = makeAppDir({ zone: { processes: 1 } }, 'sluice-sighup-');
  let m: SluiceChild | undefined;
  try {
    m = await startSluice(appDir);
    const child = m;
    await waitFor(() => child.lines.some((l) => l.event === 'WORKER_READY'), 15_000, 'worker ready');
    // the worker logs WORKER_READY itself, with its own pid
    const workerPid = Number(child.lines.find((l) => l.event === 'WORKER_READY')!.pid);
    assert.notEqual(workerPid, child.pid);

    child.kill('SIGHUP');
    process.kill(workerPid, 'SIGHUP');
    await waitFor(() => child.lines.some((l) => l.event === 'RELOADED') || !child.running, 10_000, 'RELOADED logged');
    assert.ok(child.running, `the master survived SIGHUP (exit ${JSON.stringify(child.running ? null : await child.exited)})`);
    const reloaded = child.lines.find((l) => l.event === 'RELOADED')!;
    assert.deepEqual([reloaded.changed, reloaded.workersReplaced], [[], false], 'nothing changed, nothing replaced');

    const probe = await submit({ target: () => ({ host: '127.0.0.1', port: child.smtpPort }), runId: 'hup', count: 1, concurrency: 1, maxRetries: 0 });
    assert.equal(probe.acked.size, 1, `still accepting: ${JSON.stringify(probe.final)}`);
    // a signal's default action is taken at once; by the end of that SMTP exchange a worker that
    // died of it has been reaped and logged by the master
    assert.deepEqual(child.lines.filter((l) => l.event === 'WORKER_EXITED'), [], 'the worker stayed');
    assert.doesNotThrow(() => process.kill(workerPid, 0), 'the worker process is still there');
    assert.deepEqual(await child.stop(), { code: 0, signal: null });
  } finally {
    if (m) {
      m.kill('SIGKILL');
      await m.exited;
    }
    rmSync(appDir, { recursive: true, force: true });
  }
});
