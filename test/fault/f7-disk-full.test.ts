/**
 * F7: the queue's disk fills up during acceptance (reliability.md §2), on a real 8 MB tmpfs.
 *
 * Pass: every reply is 250 or 451/452, never 5xx; MAIL FROM gets 452 once free space is under
 * the reserve; POST /send answers 507 (not 500); the process keeps its PID; after the space is
 * grown again 250 returns within 10 s without a restart; every acknowledged message is whole
 * when the queue is opened afresh.
 *
 * F7b: the disk fills in the middle of a message, so LevelDB's own writes fail (ENOSPC): that
 * message gets 451, nothing of it is visible, the chunks it left are collected by the garbage
 * collector, and the server accepts again once space is back.
 *
 * F7c: no reserve at all (minFreeSpace 0), so LevelDB runs into ENOSPC while compacting — an
 * error LevelDB keeps returning for every later write until the database is reopened. Replies
 * stay 250/451/452, and 250 returns after the remount without a restart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { makeAppDir, startChild, type ChildMaster } from '../helpers/child-master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { buildMessage, countOutcomes, sendOnce, submit, type Attempt } from '../helpers/submit.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { allMetas, openForCheck, testIdFromHeaders, verifyQueue } from '../helpers/verify-queue.js';
import { keys, PREFIX } from '../../lib/queue/keys.js';

const RCPTS = ['r1@dest.test', 'r2@dest.test'];
const MB = 1024 * 1024;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Writes `file` until the file system says ENOSPC (LevelDB may still be writing meanwhile). */
function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, block);
    throw new Error('the disk never filled up');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

async function postSend(apiPort: number, testId: string): Promise<{ status: number; body: { id?: string; error?: string; message?: string } }> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'api@src.test', to: RCPTS, subject: testId, text: 'api body', headers: { 'X-Test-Id': testId } }),
  });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: string } };
}

/** Sends one message at a time until one gets 250; the time it took, or -1 after `limitMs`. */
async function waitFor250(port: number, testId: string, limitMs: number): Promise<{ ms: number; queueId?: string; last?: Attempt['outcome'] }> {
  const t0 = Date.now();
  let last: Attempt['outcome'] | undefined;
  for (let i = 0; i < 200 && Date.now() - t0 < limitMs; i++) {
    const data = buildMessage({ from: 'probe@src.test', to: RCPTS, testId, bodyBytes: 2000 });
    const r = await sendOnce({ host: '127.0.0.1', port }, { from: 'probe@src.test', to: RCPTS, data, timeoutMs: 10_000 });
    last = r.outcome;
    if (r.outcome === '250') return { ms: Date.now() - t0, queueId: r.queueId, last };
    await new Promise((res) => setTimeout(res, 200));
  }
  return { ms: -1, last };
}

test('F7: a full queue disk gives 451/452 (never 5xx, never a lost 250), and 250 returns after space is freed without a restart', { timeout: 120_000 }, async (t) => {
  // a reserve of half the disk: the 452s come before LevelDB's log reaches its 4 MB write buffer,
  // so no compaction runs (one would need 4 MB more for a moment and free it again, making
  // "full" come and go); F7c is the case without a reserve
  const appDir = makeAppDir({ smtp: { maxSize: '100KB' }, queue: { minFreeSpace: '4MB' } }, 'sluice-f7-');
  const disk = mountTmpfs(path.join(appDir, 'data'), 8);
  if (typeof disk === 'string') {
    rmSync(appDir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  let m: ChildMaster | undefined;
  try {
    m = await startChild(appDir);
    const pid = m.pid;
    const rssBefore = rssBytes(pid);
    const target = { host: '127.0.0.1', port: m.smtpPort };
    let mail452 = 0;
    const r = await submit({
      target: () => target,
      runId: 'f7',
      count: 2000,
      concurrency: 10,
      bodyBytes: 20_000,
      randomBody: true, // LevelDB compresses: repeated text would never fill the disk
      maxRetries: 0,
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
    if (m) {
      m.kill('SIGKILL');
      await m.exited;
    }
    disk.unmount();
    rmSync(appDir, { recursive: true, force: true });
  }
});

test('F7b: the disk filling up in the middle of a message gives 451; nothing of it is stored, its leftovers are collected', { timeout: 120_000 }, async (t) => {
  const appDir = makeAppDir({ smtp: { maxSize: '3MB' }, queue: { minFreeSpace: 0 } }, 'sluice-f7b-');
  const disk = mountTmpfs(path.join(appDir, 'data'), 16);
  if (typeof disk === 'string') {
    rmSync(appDir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  const filler = path.join(appDir, 'data', 'filler');
  let m: ChildMaster | undefined;
  try {
    m = await startChild(appDir);
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
    const errors = m.lines.filter((l) => l.level >= 50).map((l) => String(l.msg));
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
        for await (const key of store.db.keys(keys.allOf(PREFIX.body))) {
          const id = key.split(':')[1]!;
          if (!ids.has(id)) out.add(id);
        }
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

test('F7c: with no reserve LevelDB itself hits ENOSPC (compaction); 451s, then 250 again after the remount without a restart', { timeout: 120_000 }, async (t) => {
  const appDir = makeAppDir({ smtp: { maxSize: '100KB' }, queue: { minFreeSpace: 0 } }, 'sluice-f7c-');
  // 6 MB: when LevelDB's log reaches its 4 MB write buffer, the table it compacts into cannot fit
  const disk = mountTmpfs(path.join(appDir, 'data'), 6);
  if (typeof disk === 'string') {
    rmSync(appDir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  let m: ChildMaster | undefined;
  try {
    m = await startChild(appDir);
    const pid = m.pid;
    const target = { host: '127.0.0.1', port: m.smtpPort };
    let refused = 0;
    const r = await submit({
      target: () => target,
      runId: 'f7c',
      count: 2000,
      concurrency: 10,
      bodyBytes: 20_000,
      randomBody: true,
      maxRetries: 0,
      onAttempt: (a) => {
        if (a.outcome === '4xx') refused++;
      },
      shouldStop: () => refused >= 40,
    });
    t.diagnostic(`until full: ${JSON.stringify(countOutcomes(r.attempts))}, free ${(disk.freeBytes() / MB).toFixed(2)} MB`);
    const wrong = r.attempts.filter((a) => !(a.outcome === '250' || (a.outcome === '4xx' && (a.code === 451 || a.code === 452))));
    assert.deepEqual(wrong.slice(0, 5), [], 'every reply is 250, 451 or 452');
    const errors = m.lines.filter((l) => l.level >= 50).map((l) => String(l.msg));
    assert.ok(errors.some((e) => /queue write failed.*No space left/.test(e)), `LevelDB hit ENOSPC: ${errors.slice(0, 3).join(' | ')}`);

    disk.resize(64);
    const back = await waitFor250(m.smtpPort, 'f7c-after', 10_000);
    t.diagnostic(`250 again ${back.ms} ms after the remount`);
    assert.ok(back.ms >= 0 && back.queueId, `no 250 within 10 s of freeing space (last: ${back.last})`);
    assert.equal(m.pid, pid);
    assert.ok(m.running);
    assert.deepEqual(await m.stop(), { code: 0, signal: null });

    const acked = new Map(r.acked);
    acked.set('f7c-after', back.queueId!);
    const report = await verifyQueue(path.join(appDir, 'data', 'queue'), acked, RCPTS.length);
    t.diagnostic(`acked ${acked.size}, stored ${report.stored}, LOST ${report.lost.length}`);
    assert.deepEqual(report.problems, [], 'every acknowledged message is whole after a fresh open');
  } finally {
    if (m) {
      m.kill('SIGKILL');
      await m.exited;
    }
    disk.unmount();
    rmSync(appDir, { recursive: true, force: true });
  }
});
