/**
 * The queue's typed operations on a real LevelDB: a row moved by a QueueBatch keeps exactly one
 * schedule entry (at its new time), readJob leaves out rows that moved since a scan, and the
 * listing is bounded and pages by id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueBatch } from '../../lib/queue/batch.js';
import { openStore, storeMessage, tempQueuePath } from '../helpers/queue-fixtures.js';

test('a moved row keeps one schedule entry, at its new due time', async () => {
  const store = await openStore(tempQueuePath());
  try {
    const id = store.newId();
    await storeMessage(store, id, Buffer.from('body\r\n'), ['a@x.test']);
    const [row] = await store.getRows(id);
    const due = [];
    for await (const e of store.scanDue('default', Date.now() + 1000)) due.push(e);
    assert.deepEqual(due.map((e) => [e.id, e.seq, e.domain]), [[id, 1, 'x.test']]);
    const later = { ...row!, due: Date.now() + 60_000, attempts: 1 };
    await store.write(new QueueBatch().moveRow(row!, later));
    assert.equal(await store.isScheduled(later), true);
    assert.equal(await store.isScheduled(row!), false);
    assert.equal((await store.census(id)).schedule, 1);
    assert.equal(await store.nextDueAfter('default', Date.now() + 1000), later.due);
    // a scan that saw the old entry: the row moved, so the job leaves it out
    const job = await store.readJob('default', id, [{ seq: 1, due: row!.due }]);
    assert.equal(job.meta?.id, id);
    assert.deepEqual(job.rows, []);
  } finally {
    await store.close();
  }
});

test('listMessages is bounded and pages by the last id', async () => {
  const store = await openStore(tempQueuePath());
  try {
    const ids = [];
    for (let i = 0; i < 5; i++) {
      const id = store.newId();
      ids.push(id);
      await storeMessage(store, id, Buffer.from(`m${i}\r\n`), ['a@x.test']);
    }
    const page = async (after?: string) => {
      const out = [];
      for await (const meta of store.listMessages({ after, limit: 2 })) out.push(meta.id);
      return out;
    };
    assert.deepEqual(await page(), ids.slice(0, 2));
    assert.deepEqual(await page(ids[1]), ids.slice(2, 4));
    assert.deepEqual(await page(ids[3]), ids.slice(4));
  } finally {
    await store.close();
  }
});
