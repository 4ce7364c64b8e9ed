/**
 * F7: the queue's disk fills up during acceptance, on a real 8 MB tmpfs.
 *
 * Pass: every reply is 250 or 451/452, never 5xx; MAIL FROM gets 452 once free space is under
 * the reserve; POST /send answers 507 (not 500); the process keeps its PID; after the space is
 * grown again 250 returns within 10 s without a restart; every acknowledged message is whole
 * when the queue is opened afresh. (F7b and F7c: f7b-*.test.ts, f7c-*.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { countOutcomes, submit } from '../helpers/submit.js';
import { verifyQueue } from '../helpers/verify-queue.js';
import { FILL, MB, RCPTS, appDirOnTmpfs, postSend, rssBytes, tearDown, waitFor250 } from './disk-full.js';

test('F7: a full queue disk gives 451/452 (never 5xx, never a lost 250), and 250 returns after space is freed without a restart', { timeout: 120_000 }, async (t) => {
  // a reserve of half the disk: the 452s come before LevelDB's log reaches its 8 MB write buffer,
  // so no compaction runs (one would need 8 MB more for a moment and free it again, making
  // "full" come and go); F7c is the case without a reserve
  const made = appDirOnTmpfs(t, { smtp: { maxSize: '100KB' }, queue: { minFreeSpace: '4MB' } }, 'sluice-f7-', 8);
  if (!made) return;
  const { appDir, disk } = made;
  let m: SluiceChild | undefined;
  try {
    m = await startSluice(appDir);
    const pid = m.pid;
    const rssBefore = rssBytes(pid);
    const target = { host: '127.0.0.1', port: m.smtpPort };
    let mail452 = 0;
    const r = await submit({
      target: () => target,
      runId: 'f7',
      ...FILL,
      onAttempt: (a) => {
        if (a.code === 452 && a.stage === 'MAIL') mail452++;
      },
      shouldStop: () => mail452 >= 30,
    });
    const freeWhenFull = disk.freeBytes();
    t.diagnostic(`until full: ${JSON.stringify(countOutcomes(r.attempts))}, free ${(freeWhenFull / MB).toFixed(2)} MB`);

    const wrong = r.attempts.filter((a) => !(a.outcome === '250' || (a.outcome === '4xx' && (a.code === 451 || a.code === 452))));
    assert.deepEqual(wrong.slice(0, 5), [], 'every reply is 250, 451 or 452');
    assert.ok(r.acked.size >= 50, `only ${r.acked.size} accepted before the disk was full`);
    assert.ok(mail452 >= 30, 'MAIL FROM gets 452 once the disk is nearly full');
    // the 452 at MAIL comes when free space is under the reserve plus room for one message
    assert.ok(freeWhenFull < 4 * MB + 1.5 * 100 * 1024, `free ${freeWhenFull} bytes yet MAIL FROM got 452`);

    const api = await postSend(m.apiPort, 'f7-api-full');
    assert.ok(api.status === 507 || api.status === 503, `POST /send while full: ${api.status} ${JSON.stringify(api.body)}`);
    assert.ok(api.body.error && api.body.message, 'a JSON error, not a stack trace');

    disk.resize(64);
    const back = await waitFor250(m.smtpPort, 'f7-after', 10_000);
    t.diagnostic(`250 again ${back.ms} ms after the remount`);
    assert.ok(back.ms >= 0 && back.queueId, `no 250 within 10 s of freeing space (last: ${back.last})`);
    const acked = new Map(r.acked);
    acked.set('f7-after', back.queueId!);
    const apiAfter = await postSend(m.apiPort, 'f7-api-after');
    assert.equal(apiAfter.status, 200, JSON.stringify(apiAfter.body));
    acked.set('f7-api-after', apiAfter.body.id!);

    assert.ok(m.running, 'the master is still running');
    assert.equal(m.pid, pid, 'same PID throughout');
    const rssGrowth = rssBytes(pid) - rssBefore;
    t.diagnostic(`RSS growth ${(rssGrowth / MB).toFixed(1)} MB`);
    assert.ok(rssGrowth <= 100 * MB, `RSS grew by ${rssGrowth} bytes`);
    assert.deepEqual(await m.stop(), { code: 0, signal: null });

    const report = await verifyQueue(path.join(appDir, 'data', 'queue'), acked, RCPTS.length);
    t.diagnostic(`acked ${acked.size}, stored ${report.stored}, LOST ${report.lost.length}`);
    assert.deepEqual(report.problems, [], 'every acknowledged message is whole after a fresh open');
  } finally {
    await tearDown(m, disk, appDir);
  }
});
