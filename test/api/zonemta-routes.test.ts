/**
 * ZoneMTA's inspection routes in its shapes, over a real HTTP socket against a real queue:
 * GET /zones, GET /counter/zone/:zone, GET /fetch/:id (whole, body only, unknown id).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { postJson, request, type Json } from '../helpers/http.js';
import { storedBytes } from '../helpers/stored-message.js';

let m: TestMaster;
before(async () => {
  m = await startMaster({ zones: { bulk: { recipientDomains: ['bulk.test', 'mass.test'] } } });
});
after(() => m.stop());

async function send(to: string[]): Promise<string> {
  const r = await postJson(`${m.api}/send`, { from: 'a@src.test', to, subject: 'zonemta', text: 'body line\n' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return String(r.body.id);
}

test('GET /zones lists every zone by name, sorted', async () => {
  const r = await request(`${m.api}/zones?includeDisabled=true`);
  assert.equal(r.status, 200);
  const names = (r.body as unknown as { name: string }[]).map((z) => z.name);
  assert.ok(names.includes('bulk') && names.includes('default'), JSON.stringify(r.body));
  assert.deepEqual(names, [...names].sort());
});

test('GET /counter/zone/:zone: rows and recipient domains of the queued and deferred deliveries; unknown zone or type 404', async () => {
  await send(['x@bulk.test', 'y@bulk.test']);
  await send(['z@mass.test']);
  const r = await request(`${m.api}/counter/zone/bulk`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const active = r.body.active as { rows: number; entries: { key: string; value: number }[] };
  assert.equal(r.body.zone, 'bulk');
  assert.equal(active.rows, 3);
  assert.deepEqual(active.entries, [
    { key: 'bulk.test', value: 2 },
    { key: 'mass.test', value: 1 },
  ]);
  assert.deepEqual(r.body.deferred, { rows: 0, entries: [] });
  assert.equal((await request(`${m.api}/counter/zone/nowhere`)).status, 404);
  const type = await request(`${m.api}/counter/domain/bulk`);
  assert.equal(type.status, 404);
  assert.match(String(type.body.message), /counters are kept per zone/);
});

test('GET /fetch/:id streams the stored message as message/rfc822; ?body=yes the body only; an unknown id is 404', async () => {
  const id = await send(['f@dest.test']);
  const whole = await fetch(`${m.api}/fetch/${id}`);
  assert.equal(whole.status, 200);
  assert.match(whole.headers.get('content-type') ?? '', /^message\/rfc822/);
  const bytes = Buffer.from(await whole.arrayBuffer());
  assert.ok(bytes.equals(await storedBytes(m.master.store, id)), 'the stored bytes, headers and body');
  assert.match(bytes.toString('latin1'), /^Subject: zonemta\r\n/m);

  const body = Buffer.from(await (await fetch(`${m.api}/fetch/${id}?body=yes`)).arrayBuffer()).toString('latin1');
  assert.doesNotMatch(body, /^Subject:/m);
  assert.match(body, /body line\r\n$/);

  for (const bad of ['0123456789abcdef012345', 'not-an-id']) {
    const r = await request(`${m.api}/fetch/${bad}`);
    assert.equal(r.status, 404);
    assert.equal((r.body as Json).error, 'NotFound');
  }
});
