/**
 * The queue routes with ZoneMTA's reply shapes: GET /queue/:zone counts per zone and domain,
 * GET /message/:id shows meta and delivery rows, DELETE /message/:id removes every key of the
 * message (meta, rows, schedule keys, body chunks) and moves the counters; unknown ids and zones
 * are JSON 404s. GET /health reports the queue.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { QueueCensus } from '../../lib/queue/store.js';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { isErrorShape, postJson, request, type Json, type SendReply } from '../helpers/http.js';

let m: TestMaster;
before(async () => {
  // small chunks so a message has several body keys
  m = await startMaster({ queue: { chunkSize: '1KB' }, zones: { bulk: { processes: 0, recipientDomains: ['bulk.test', 'mass.test'] } } });
});
after(() => m.stop());

async function send(to: string[], text = 'x'): Promise<SendReply> {
  const r = await postJson(`${m.api}/send`, { from: 'a@src.test', to, subject: 'q', text });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as SendReply;
}

/** Keys per family, optionally only those of one message id. */
function keyCounts(id?: string): Promise<QueueCensus> {
  return m.master.store.census(id);
}

interface ZoneReply {
  time: number;
  started: number;
  processed: number;
  queued: number;
  deferred: number;
  domains: { domain: string; queued: number; deferred: number }[];
}

async function zone(name: string): Promise<ZoneReply> {
  const r = await request(`${m.api}/queue/${name}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body as unknown as ZoneReply;
}

test('GET /queue/:zone counts per zone and per domain across several messages', async () => {
  const t0 = Date.now();
  await send(['a1@dest.test', 'a2@dest.test', 'b1@other.test', 'c1@bulk.test']);
  await send(['a3@dest.test', 'c2@bulk.test', 'c3@mass.test']);
  await send(['c4@BULK.test']);
  const def = await zone('default');
  assert.deepEqual(Object.keys(def).sort(), ['deferred', 'domains', 'held', 'processed', 'queued', 'started', 'time']);
  assert.ok(def.time >= t0 && def.time <= Date.now());
  assert.ok(def.started <= t0);
  assert.equal(def.processed, 0);
  assert.equal(def.queued, 4);
  assert.equal(def.deferred, 0);
  assert.deepEqual(def.domains, [
    { domain: 'dest.test', queued: 3, deferred: 0 },
    { domain: 'other.test', queued: 1, deferred: 0 },
  ]);
  const bulk = await zone('bulk');
  assert.equal(bulk.queued, 4);
  assert.deepEqual(bulk.domains, [
    { domain: 'bulk.test', queued: 3, deferred: 0 },
    { domain: 'mass.test', queued: 1, deferred: 0 },
  ]);
});

test('GET /message/:id has the ZoneMTA shape { meta, messages: [{ id, seq, zone, recipient, status, … }] }', async () => {
  const sent = await send(['x@dest.test', 'y@bulk.test']);
  const r = await request(`${m.api}/message/${sent.id}`);
  assert.equal(r.status, 200);
  assert.deepEqual(Object.keys(r.body).sort(), ['messages', 'meta']);
  const meta = r.body.meta as Json;
  assert.equal(meta.id, sent.id);
  assert.equal(meta.messageId, sent.messageId);
  assert.equal(meta.from, 'a@src.test');
  assert.equal(meta.rcptCount, 2);
  assert.equal(typeof meta.size, 'number');
  assert.equal(typeof meta.bodyHash, 'string');
  assert.equal(meta.headers, undefined, 'the raw header block is not part of the reply');
  const rows = r.body.messages as Json[];
  assert.deepEqual(
    rows.map((x) => [x.id, x.seq, x.zone, x.recipient, x.status]),
    [
      [sent.id, '001', 'default', 'x@dest.test', 'QUEUED'],
      [sent.id, '002', 'bulk', 'y@bulk.test', 'QUEUED'],
    ],
  );
  for (const row of rows) assert.ok(!Number.isNaN(Date.parse(String(row.queued))));
});

test('DELETE /message/:id removes meta, rows, schedule keys and body chunks; counters drop; again → 404', async () => {
  const sent = await send(['d1@dest.test', 'd2@dest.test', 'd3@bulk.test'], 'body line\n'.repeat(500));
  const keysBefore = await keyCounts(sent.id);
  assert.deepEqual({ ...keysBefore, body: keysBefore.body > 1 }, { meta: 1, body: true, row: 3, schedule: 3, hold: 0, suppression: 0 });
  const allBefore = await keyCounts();
  const [defBefore, bulkBefore] = [await zone('default'), await zone('bulk')];

  const del = await request(`${m.api}/message/${sent.id}`, { method: 'DELETE' });
  assert.equal(del.status, 200);
  assert.deepEqual(del.body, { success: true, id: sent.id });

  assert.deepEqual(await keyCounts(sent.id), { meta: 0, body: 0, row: 0, schedule: 0, hold: 0, suppression: 0 });
  const allAfter = await keyCounts();
  assert.deepEqual(allAfter, {
    meta: allBefore.meta - 1,
    body: allBefore.body - keysBefore.body,
    row: allBefore.row - 3,
    schedule: allBefore.schedule - 3,
    hold: 0,
    suppression: 0,
  });
  assert.equal((await zone('default')).queued, defBefore.queued - 2);
  assert.equal((await zone('bulk')).queued, bulkBefore.queued - 1);

  const again = await request(`${m.api}/message/${sent.id}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.ok(isErrorShape(again.body));
  assert.equal((await request(`${m.api}/message/${sent.id}`)).status, 404);
});

test('concurrent DELETEs of one message: one 200, the rest 404, counters move once', async () => {
  const sent = await send(['e1@dest.test', 'e2@dest.test']);
  const before = (await zone('default')).queued;
  const replies = await Promise.all(Array.from({ length: 5 }, () => request(`${m.api}/message/${sent.id}`, { method: 'DELETE' })));
  assert.deepEqual(replies.map((r) => r.status).sort(), [200, 404, 404, 404, 404]);
  assert.equal((await zone('default')).queued, before - 2);
  for (const d of (await zone('default')).domains) assert.ok(d.queued >= 0 && d.deferred >= 0, JSON.stringify(d));
});

test('unknown ids and zones → JSON 404', async () => {
  for (const [method, url] of [
    ['GET', '/message/ffffffffffffffffffffff'],
    ['DELETE', '/message/ffffffffffffffffffffff'],
    ['GET', '/message/not-an-id'],
    ['DELETE', '/message/..%2F..%2Fetc'],
    ['GET', `/message/${'f'.repeat(65)}`],
    ['GET', '/queue/nosuchzone'],
    ['GET', '/queue/%00'],
  ] as const) {
    const r = await request(m.api + url, { method });
    assert.ok(r.status === 404 || r.status === 400, `${method} ${url} → ${r.status}`);
    assert.ok(isErrorShape(r.body), `${method} ${url}: ${JSON.stringify(r.body)}`);
    if (!url.includes('f'.repeat(65))) assert.equal(r.status, 404, `${method} ${url}`);
  }
  // a zone that exists but has nothing queued is a zero reply, not a 404
  const empty = await startMaster({ zones: { quiet: {} } });
  try {
    const r = await request(`${empty.api}/queue/quiet`);
    assert.equal(r.status, 200);
    assert.deepEqual({ ...r.body, time: 0, started: 0 }, { time: 0, started: 0, processed: 0, queued: 0, deferred: 0, held: 0, domains: [] });
  } finally {
    await empty.stop();
  }
});

test('GET /health reports the queue', async () => {
  const r = await request(`${m.api}/health`);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
  const q = r.body.queue as Json;
  assert.equal(q.db, 'open');
  assert.equal(q.accepting, true);
  assert.equal(typeof q.queued, 'number');
  assert.equal(q.queued, m.master.store.counters.totals().queued);
});
