/**
 * Issue 8, item 3: bounces on a nearly full disk, on a real tmpfs.
 *
 * 1. Below the free-space margin meant for clients (queue.minFreeSpace + 1.5 × smtp.maxSize) but
 *    with room to write: a recipient that hard-fails gets its DSN. The DSN is ours, not a
 *    client's: the margin exists to keep room for exactly this kind of internal write.
 * 2. With the disk full to the last byte: the bounce cannot be written. Its row must stay (never
 *    removed without its DSN), the delivery must not be tried again and again while the write
 *    fails (a full disk must not turn into a delivery storm), and once space is back the DSN is
 *    queued and the row removed, together.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, queueOf, type LoggedMaster } from '../helpers/delivery-kit.js';
import { tempDir } from '../helpers/master.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { fillUp, MB } from './disk-full.js';

test('bounces on a nearly full and on a full disk: every DSN is queued, no row leaves without it, no delivery storm', { timeout: 120_000 }, async (t) => {
  const dir = tempDir('sluice-bounce-full-');
  const disk = mountTmpfs(path.join(dir, 'data'), 16);
  if (typeof disk === 'string') {
    rmSync(dir, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  const mx = await startFakeMx({ tls: false });
  let m: LoggedMaster | undefined;
  let smtp: ReturnType<typeof submitter> | undefined;
  const filler = path.join(disk.dir, 'filler');
  try {
    mx.setRecipientReply('bad1@dest.test', '450 4.2.0 try later');
    mx.setRecipientReply('bad2@dest.test', '450 4.2.0 try later');
    m = await startLoggedMaster(
      {
        smtp: { maxSize: '100KB' },
        queue: { minFreeSpace: '4MB', retrySchedule: ['300ms'], maxQueueTime: '10m' },
        delivery: { connectTimeout: '2s', greetingTimeout: '2s', socketTimeout: '5s', unreachableHold: '0s', sessionIdle: '0s' },
        zones: { default: { processes: 1, connections: 4, route: mx.route } },
      },
      dir,
    );
    const master = m;
    smtp = submitter(m.smtpPort, 1);
    const id1 = await smtp.send({ from: 'sender@src.test', to: 'bad1@dest.test', testId: 'bf-1' });
    const id2 = await smtp.send({ from: 'sender@src.test', to: 'bad2@dest.test', testId: 'bf-2' });
    const attempts = (rcpt: string, code: string) => mx.transactions.filter((x) => x.refused.some((r) => r.address === rcpt && r.reply.startsWith(code))).length;
    const dsnsFor = (testId: string) => mx.transactions.filter((x) => x.from === '' && x.outcome === 'accepted' && new RegExp(`^X-Test-Id: ${testId}\\r?$`, 'im').test(x.data?.toString('latin1') ?? '')).length;
    await mx.waitUntil(() => attempts('bad1@dest.test', '450') > 0 && attempts('bad2@dest.test', '450') > 0, 10_000, () => 'first attempts');

    // 1: under the client margin, with room for the DSN
    writeFileSync(filler, Buffer.alloc(Math.max(0, disk.freeBytes() - 1 * MB), 0x61));
    t.diagnostic(`phase 1: ${(disk.freeBytes() / MB).toFixed(2)} MB free, margin for clients ${(4 + 0.15).toFixed(2)} MB`);
    mx.setRecipientReply('bad1@dest.test', '550 5.1.1 user unknown');
    await waitFor(() => master.events('BOUNCED').some((e) => e.id === id1), 10_000, 'bf-1 bounced');
    await mx.waitUntil(() => dsnsFor('bf-1') > 0, 10_000, () => `no DSN for bf-1 on the nearly full disk; log: ${JSON.stringify(master.logs.filter((l) => l.level >= 40).map((l) => l.msg).slice(-3))}`);

    // 2: full to the last byte
    fillUp(path.join(disk.dir, 'filler2'));
    mx.setRecipientReply('bad2@dest.test', '550 5.1.1 user unknown');
    await mx.waitUntil(() => attempts('bad2@dest.test', '550') > 0, 10_000, () => 'bf-2 tried with the 550');
    // a while with the write failing: how often is the delivery tried meanwhile?
    await new Promise((r) => setTimeout(r, 3000));
    const during = attempts('bad2@dest.test', '550');
    t.diagnostic(`phase 2: ${during} attempts with the 550 in 3 s while the outcome could not be written`);
    assert.equal(during, 1, 'no delivery storm while the outcome write fails');
    assert.equal(dsnsFor('bf-2'), 0);
    // the database may be closed for its reopen now: the lease says the row is still held
    assert.ok(m.master.scheduler!.isLeased(id2, 1) || (m.master.store.isOpen && (await m.master.store.getRows(id2)).length === 1), 'the bounced row stays until its DSN is stored');

    unlinkSync(path.join(disk.dir, 'filler2'));
    unlinkSync(filler);
    await mx.waitUntil(() => dsnsFor('bf-2') > 0, 30_000, () => 'no DSN for bf-2 after space came back');
    await waitFor(async () => {
      const q = await queueOf(master.api);
      return q.queued + q.deferred === 0;
    }, 10_000, 'queue empty');
    assert.equal(attempts('bad2@dest.test', '550'), 1, 'still the one attempt');
    assert.equal(dsnsFor('bf-1'), 1, 'one DSN for bf-1');
    assert.equal(dsnsFor('bf-2'), 1, 'one DSN for bf-2');
  } finally {
    smtp?.close();
    await m?.master.stop();
    await mx.stop();
    disk.unmount();
    rmSync(dir, { recursive: true, force: true });
  }
});
