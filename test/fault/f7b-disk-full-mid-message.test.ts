/**
 * F7b: the disk fills in the middle of a message, so LevelDB's own writes fail (ENOSPC) on a
 * real tmpfs: that message gets 451, nothing of it is visible, the chunks it left are collected
 * by the garbage collector, and the server accepts again once space is back — same PID.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { makeAppDir } from '../helpers/app-dir.js';
import { isError, startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { buildMessage, submit } from '../helpers/submit.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { allMetas, openForCheck, testIdFromHeaders, verifyQueue } from '../helpers/verify-queue.js';
import { MB, RCPTS, fillUp, waitFor250 } from './disk-full.js';

test('F7b: the disk filling up in the middle of a message gives 451; nothing of it is stored, its leftovers are collected', { timeout: 120_000 }, async (t) => {
  const appDir = makeAppDir({ smtp: { maxSize: '3MB' }, queue: { minFreeSpace: 0 } }, 'sluice-f7b-');
  const disk = mountTmpfs(path.join(appDir, 'data'), 16);
  if (typeof disk === 'string') {
    rmSync(appDir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  const filler = path.join(appDir, 'data', 'filler');
  let m: SluiceChild | undefined;
  try {
    m = await startSluice(appDir);
    const pid = m.pid;
    const before = await submit({ target: () => ({ host: '127.0.0.1', port: m!.smtpPort }), runId: 'f7b-pre', count: 5, concurrency: 1, recipients: RCPTS });
    assert.equal(before.acked.size, 5);

    const c = await SmtpTalk.connect(m.smtpPort);
    await c.expect(220);
    await c.send('EHLO big.test', 250);
    await c.send('MAIL FROM:<big@src.test>', 250);
    for (const r of RCPTS) await c.send(`RCPT TO:<${r}>`, 250);
    await c.send('DATA', 354);
    const body = buildMessage({ from: 'big@src.test', to: RCPTS, testId: 'f7b-big', bodyBytes: 2 * MB, randomBody: true });
    const firstPart = 320 * 1024;
    const freeAtStart = disk.freeBytes();
    c.write(body.slice(0, firstPart));
    // wait until the first body chunks are in LevelDB's log (free space drops), then fill the disk
    const t0 = Date.now();
    while (freeAtStart - disk.freeBytes() < 192 * 1024 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    assert.ok(freeAtStart - disk.freeBytes() >= 192 * 1024, 'the first chunks never reached the disk');
    fillUp(filler);
    c.write(body.slice(firstPart) + '.\r\n');
    const reply = await c.next(30_000);
    c.close();
    assert.ok(reply, 'the server closed the connection instead of replying');
    assert.equal(reply.code, 451, `a failed write mid-message is 451: ${reply.text}`);

    unlinkSync(filler);
    const back = await waitFor250(m.smtpPort, 'f7b-after', 10_000);
    t.diagnostic(`250 again ${back.ms} ms after the filler was removed`);
    assert.ok(back.ms >= 0 && back.queueId, `no 250 within 10 s of freeing space (last: ${back.last})`);
    assert.equal(m.pid, pid);
    assert.ok(m.running);
    const errors = m.lines.filter(isError).map((l) => String(l.msg));
    assert.ok(errors.some((e) => /queue write failed/.test(e)), `the failed write is logged: ${errors.join(' | ')}`);
    assert.deepEqual(await m.stop(), { code: 0, signal: null });

    const acked = new Map(before.acked);
    acked.set('f7b-after', back.queueId!);
    const report = await verifyQueue(path.join(appDir, 'data', 'queue'), acked, RCPTS.length);
    assert.deepEqual(report.problems, []);

    const store = await openForCheck(path.join(appDir, 'data', 'queue'));
    try {
      const metas = await allMetas(store);
      assert.ok(!metas.some((meta) => testIdFromHeaders(meta.headers) === 'f7b-big'), 'the failed message is not in the queue');
      const ids = new Set(metas.map((meta) => meta.id));
      for await (const row of store.allRowKeys()) assert.ok(ids.has(row.id), `row ${row.id}:${row.seq} without metadata`);
      const orphanIds = async () => {
        const out = new Set<string>();
        for await (const id of store.bodyIds()) if (!ids.has(id)) out.add(id);
        return out;
      };
      const leftovers = await orphanIds();
      t.diagnostic(`leftover bodies after the failure: ${leftovers.size}`);
      assert.equal(leftovers.size, 1, 'the chunks written before the disk filled are left over, invisible');
      // not yet: the collector waits gcGrace
      assert.equal(await store.collectGarbage(Date.now(), 3_600_000), 0);
      assert.equal(await store.collectGarbage(Date.now() + 3_600_000 + 1000, 3_600_000), 1);
      assert.equal((await orphanIds()).size, 0);
    } finally {
      await store.close();
    }
  } finally {
    if (m) {
      m.kill('SIGKILL');
      await m.exited;
    }
    rmSync(filler, { force: true });
    disk.unmount();
    rmSync(appDir, { recursive: true, force: true });
  }
});
