/**
 * Issue 8, item 1: queue ids when the wall clock steps back (an NTP step, a VM resumed from a
 * snapshot). An id is milliseconds, a counter and a random suffix; an id issued again would make
 * ingest overwrite a queued message's body, metadata and some of its rows, and its other rows
 * would then be delivered with the new message's content. Ids must stay unique whatever the
 * clock does, within a process and across a restart, and a queued message is never overwritten.
 *
 * The clock is stepped by replacing Date.now in this process (the master runs here); timers run
 * on the monotonic clock and are not affected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, tempDir } from '../helpers/master.js';
import { submitter } from '../helpers/delivery-kit.js';
import { checkWhole } from '../helpers/verify-queue.js';

const realNow = Date.now;

test('a clock stepping back, in a running master and across a restart, never reissues an id or overwrites a queued message', { timeout: 60_000 }, async () => {
  const dir = tempDir();
  const T = realNow();
  const sent: { testId: string; id: string; rcpts: number }[] = [];
  let m = await startMaster({}, dir);
  try {
    let smtp = submitter(m.smtpPort, 1);
    const send = async (testId: string, rcpts: number, clockMs: number) => {
      Date.now = () => clockMs;
      try {
        const to = Array.from({ length: rcpts }, (_, i) => `${testId.toLowerCase()}${i}@dest${i}.test`);
        sent.push({ testId, id: await smtp.send({ to, testId }), rcpts });
      } finally {
        Date.now = realNow;
      }
    };
    await send('A', 3, T);
    await send('B', 1, T + 1);
    await send('C', 1, T); // the clock stepped back one millisecond
    await send('D', 2, T - 5000); // and then five seconds
    smtp.close();

    // a restart with the clock an hour behind the newest message
    await m.master.stop();
    Date.now = () => T - 3_600_000;
    try {
      m = await startMaster({}, dir);
    } finally {
      Date.now = realNow;
    }
    smtp = submitter(m.smtpPort, 1);
    await send('E', 1, T - 3_600_000);
    smtp.close();

    const problems: string[] = [];
    for (const s of sent) {
      const problem = await checkWhole(m.master.store, s.id, s.rcpts, s.testId);
      if (problem) problems.push(`${s.testId}: ${problem}`);
    }
    assert.deepEqual(problems, [], 'every message is whole, with its own content and rows');
    const ids = sent.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, `every id is new: ${ids.join(' ')}`);
    for (let i = 1; i < ids.length; i++) assert.ok(ids[i]! > ids[i - 1]!, `ids keep increasing: ${ids[i - 1]} then ${ids[i]}`);
  } finally {
    Date.now = realNow;
    await m.stop();
  }
});
