/**
 * The queue after a failed write (lib/store/write-guard.ts), on a real tmpfs that runs full: the
 * commits that fail are refused and nothing of them is visible after the database is reopened
 * (even if LevelDB's buffered log finishes writing them when it closes); writes resume by
 * themselves once space is back; what was committed before stays whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, storeMessage } from '../helpers/queue-fixtures.js';
import { mountTmpfs } from '../helpers/tmpfs.js';
import { checkWhole } from '../helpers/verify-queue.js';

const body = (bytes: number) => Buffer.from(randomBytes(Math.ceil((bytes * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n'));

test('commits that fail on a full disk are refused and leave nothing visible; writes resume once space is back', { timeout: 60_000 }, async (t) => {
  const base = mkdtempSync(path.join(tmpdir(), 'sluice-guard-'));
  const disk = mountTmpfs(path.join(base, 'fs'), 4);
  if (typeof disk === 'string') {
    rmSync(base, { recursive: true, force: true });
    t.skip(disk);
    return;
  }
  const queuePath = path.join(disk.dir, 'queue');
  const filler = path.join(disk.dir, 'filler');
  let store = await openStore(queuePath, 64 * 1024);
  try {
    const before = store.newId();
    await storeMessage(store, before, body(3000));

    writeFileSync(filler, Buffer.alloc(Math.max(0, disk.freeBytes() - 8 * 1024), 0x61));
    const failed: string[] = [];
    const stored: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = store.newId();
      try {
        await storeMessage(store, id, body(30_000)); // the whole body rides in the commit batch
        stored.push(id);
      } catch {
        failed.push(id);
      }
    }
    t.diagnostic(`on the full disk: ${stored.length} stored, ${failed.length} refused`);
    assert.ok(failed.length >= 4, 'commits fail while the disk is full');
    assert.equal(store.writable, false, 'no writes while the database waits to be reopened');

    unlinkSync(filler);
    const t0 = Date.now();
    while (!store.writable && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    t.diagnostic(`writable again ${Date.now() - t0} ms after space came back`);
    assert.equal(store.writable, true, 'the store reopened itself');

    const after = store.newId();
    await storeMessage(store, after, body(3000));
    const check = async () => {
      for (const id of failed) {
        assert.equal(await store.getMeta(id), undefined, `refused ${id} has no metadata`);
        assert.deepEqual(await store.getRows(id), [], `refused ${id} has no rows`);
      }
      for (const id of [before, ...stored, after]) assert.equal(await checkWhole(store, id, 2), undefined);
    };
    await check();
    // and the same after a fresh open, as after a restart
    await store.close();
    store = await openStore(queuePath, 64 * 1024);
    await check();
  } finally {
    await store.close();
    rmSync(filler, { force: true });
    disk.unmount();
    rmSync(base, { recursive: true, force: true });
  }
});
