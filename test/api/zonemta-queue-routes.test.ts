/**
 * ZoneMTA's queue routes in its shapes, over a real socket against a real queue: GET
 * /queued/:type/:zone (queued and deferred pages, order, start, pageSize), DELETE and PUT
 * /message/:id/:seq (one row; a held row and a row under lease answer 409), and
 * /suppressionlist (GET, POST, DELETE with ZoneMTA's 24-hex ids).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { postJson, request, type Json } from '../helpers/http.js';
import { deferRow } from '../helpers/queue-states.js';

let m: TestMaster;
before(async () => {
  m = await startMaster();
});
after(() => m.stop());

async function send(to: string[]): Promise<string> {
  const r = await postJson(`${m.api}/send`, { from: 'a@src.test', to, subject: 'zonemta', text: 'x' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return String(r.body.id);
}

type Listed = { id: string; seq: string; zone: string; recipient: string; created: string; queued: string; deferred: number };

test('GET /queued/:type/:zone, DELETE and PUT /message/:id/:seq in ZoneMTA shapes', async () => {
  const a = await send(['a1@dest.test', 'a2@dest.test']);
  const b = await send(['b1@dest.test']);
  await deferRow(m.master.store, a, 2);

  const queued = await request(`${m.api}/queued/queued/default`);
  assert.equal(queued.status, 200);
  assert.deepEqual(Object.keys(queued.body).sort(), ['list', 'type', 'zone']);
  const list = queued.body.list as Listed[];
  // newest first by default
  assert.deepEqual(list.map((r) => `${r.id}.${r.seq}`), [`${b}.001`, `${a}.001`]);
  assert.deepEqual(Object.keys(list[0]!).sort(), ['created', 'deferred', 'id', 'queued', 'recipient', 'seq', 'zone']);
  assert.ok(!Number.isNaN(Date.parse(list[0]!.created)) && !Number.isNaN(Date.parse(list[0]!.queued)));
  const asc = (await request(`${m.api}/queued/active/default?order=asc&start=1&pageSize=1`)).body.list as Listed[];
  assert.deepEqual(asc.map((r) => `${r.id}.${r.seq}`), [`${b}.001`]);
  const deferred = (await request(`${m.api}/queued/deferred/default`)).body.list as Listed[];
  assert.deepEqual(deferred.map((r) => [r.recipient, r.deferred]), [['a2@dest.test', 1]]);
  assert.equal((await request(`${m.api}/queued/deferred/nozone`)).status, 404);

  // PUT: the deferred row is due now
  const put = await request(`${m.api}/message/${a}/002`, { method: 'PUT' });
  assert.equal(put.status, 200, JSON.stringify(put.body));
  assert.equal(put.body.success, true);
  const [row] = await m.master.store.getRowsAt(a, [2]);
  assert.ok(row!.due <= Date.now());
  // a held row: 409 until released
  await postJson(`${m.api}/admin/hold`, { id: a, seq: 2 });
  const putHeld = await request(`${m.api}/message/${a}/2`, { method: 'PUT' });
  assert.equal(putHeld.status, 409);
  assert.equal(putHeld.body.error, 'Conflict');

  // DELETE one row; the message stays with its other row, then goes with its last
  const del = await request(`${m.api}/message/${a}/002`, { method: 'DELETE' });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal(del.body.success, true);
  assert.equal(((await request(`${m.api}/message/${a}`)).body.messages as unknown[]).length, 1);
  assert.equal((await request(`${m.api}/message/${a}/002`, { method: 'DELETE' })).status, 404);
  assert.equal((await request(`${m.api}/message/${a}/001`, { method: 'DELETE' })).status, 200);
  assert.equal((await request(`${m.api}/message/${a}`)).status, 404);
  assert.deepEqual(await m.master.store.census(a), { meta: 0, body: 0, row: 0, schedule: 0, hold: 0, suppression: 0 });
  for (const bad of [`/message/${b}/zz`, `/message/nope/001`]) assert.ok([400, 404].includes((await request(`${m.api}${bad}`, { method: 'DELETE' })).status), bad);

  // a row under lease is left alone (ZoneMTA skips a locked row): 409
  const [leased] = await m.master.store.getRowsAt(b, [1]);
  const pinned = m.master.scheduler!.pin([leased!]);
  try {
    // pinned rows look taken to a second change, as leased ones do
    const busy = await request(`${m.api}/message/${b}/001`, { method: 'DELETE' });
    assert.equal(busy.status, 409, JSON.stringify(busy.body));
  } finally {
    m.master.scheduler!.unpin(pinned);
  }
});

test('/suppressionlist in ZoneMTA shapes', async () => {
  const add = await postJson(`${m.api}/suppressionlist`, { address: 'Who@Dest.test' });
  assert.equal(add.status, 200, JSON.stringify(add.body));
  const entry = add.body.suppressed as Json;
  assert.match(String(entry.id), /^[0-9a-f]{24}$/);
  assert.equal(entry.address, 'who@dest.test');
  const dom = await postJson(`${m.api}/suppressionlist`, { domain: 'dest2.test' });
  assert.equal((dom.body.suppressed as Json).domain, 'dest2.test');
  const listed = (await request(`${m.api}/suppressionlist`)).body.suppressed as Json[];
  assert.deepEqual(listed.map((e) => e.address ?? e.domain).sort(), ['dest2.test', 'who@dest.test']);
  assert.ok(listed.every((e) => typeof e.created === 'string'));
  assert.equal((await postJson(`${m.api}/suppressionlist`, {})).status, 400);
  assert.equal((await postJson(`${m.api}/suppressionlist`, { address: 'no-at-sign' })).status, 400);
  const del = await request(`${m.api}/suppressionlist`, { method: 'DELETE', body: JSON.stringify({ id: entry.id }), headers: { 'content-type': 'application/json' } });
  assert.equal(del.status, 200, JSON.stringify(del.body));
  assert.equal(del.body.deleted, entry.id);
  const again = await request(`${m.api}/suppressionlist`, { method: 'DELETE', body: JSON.stringify({ id: entry.id }), headers: { 'content-type': 'application/json' } });
  assert.equal(again.status, 404);
});
