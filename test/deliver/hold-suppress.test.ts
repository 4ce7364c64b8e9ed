/**
 * Hold and suppression end to end, with real workers and a fake MX on loopback: held rows are
 * never tried, their hold survives a restart of Sluice on the same queue, and their release
 * delivers them; a suppressed address or domain is never contacted and its rows leave the queue
 * with DROPPED, while the message's other recipients are delivered.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startFakeMx } from '../helpers/fakemx.js';
import { startMaster, tempDir } from '../helpers/master.js';
import { FAST, queueOf, startLoggedMaster, waitFor } from '../helpers/delivery-kit.js';
import { postJson, request, type SendReply } from '../helpers/http.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('a hold survives a restart; release delivers; suppressed recipients are never contacted', async () => {
  const mx = await startFakeMx({ tls: false });
  cleanup.push(() => mx.stop());
  const dir = tempDir();
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));

  // 1. no workers: queue three messages and hold two of them (and one row of the third)
  const first = await startMaster({ ...FAST, zones: { default: { processes: 0, route: mx.route } } }, dir);
  const sent: SendReply[] = [];
  for (const to of [['h1@dest.test'], ['h2@dest.test'], ['k1@dest.test', 'h3@dest.test']]) {
    const r = await postJson(`${first.api}/send`, { from: 's@src.test', to, subject: 'hold', text: 'held mail' });
    assert.equal(r.status, 200);
    sent.push(r.body as unknown as SendReply);
  }
  for (const body of [{ id: sent[0]!.id }, { id: sent[1]!.id }, { id: sent[2]!.id, seq: 2 }]) {
    const r = await postJson(`${first.api}/admin/hold`, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.changed, body.seq ? 1 : 1);
  }
  await first.master.stop();

  // 2. restart on the same queue with a worker: only the row that was not held goes out
  const m = await startLoggedMaster({ ...FAST, zones: { default: { processes: 1, route: mx.route } } }, dir);
  cleanup.push(() => m.master.stop());
  await mx.waitFor(1, 15_000);
  assert.deepEqual(mx.transactions.flatMap((t) => t.to), ['k1@dest.test']);
  await waitFor(async () => (await queueOf(m.api)).queued === 0, 5000, 'the delivered row recorded');
  assert.equal((await queueOf(m.api)).deferred, 0);
  assert.equal((await request(`${m.api}/queue/default`)).body.held, 3);
  // held rows are not tried, however long we wait (the retry steps here are 1-8 s)
  await new Promise((r) => setTimeout(r, 2500));
  assert.equal(mx.transactions.length, 1, 'no held row was tried');

  // 3. release: due now, delivered; the hold moved their lifetime on
  const released = await postJson(`${m.api}/admin/release`, { status: 'held' });
  assert.equal(released.body.changed, 3);
  await mx.waitFor(4, 15_000);
  assert.deepEqual(mx.transactions.flatMap((t) => t.to).sort(), ['h1@dest.test', 'h2@dest.test', 'h3@dest.test', 'k1@dest.test']);
  await waitFor(async () => (await request(`${m.api}/queue/default`)).body.queued === 0, 5000, 'queue empty');
  assert.equal(m.events('RELEASED').length, 3);

  // 4. suppression: an address and a domain; a message to both and to one more recipient
  for (const body of [{ address: 'Nope@Dest.test' }, { domain: 'blocked.test', ttl: 3600, reason: 'complaints' }]) {
    const r = await postJson(`${m.api}/admin/suppression`, body);
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  const before = mx.transactions.length;
  const s = await postJson(`${m.api}/send`, { from: 's@src.test', to: ['nope@dest.test', 'x@blocked.test', 'ok@dest.test'], subject: 'mixed', text: 'x' });
  assert.equal(s.status, 200);
  const s2 = await postJson(`${m.api}/send`, { from: 's@src.test', to: ['y@blocked.test'], subject: 'only suppressed', text: 'x' });
  await mx.waitFor(before + 1, 15_000);
  await waitFor(() => m.events('DROPPED').length >= 3, 10_000, 'three rows dropped');
  await waitFor(async () => (await request(`${m.api}/queue/default`)).body.queued === 0, 5000, 'queue empty');
  const contacted = mx.transactions.slice(before).flatMap((t) => [...t.to, ...t.refused.map((x) => x.address)]);
  assert.deepEqual(contacted, ['ok@dest.test']);
  const dropped = m.events('DROPPED');
  assert.deepEqual(dropped.map((e) => e.recipient).sort(), ['nope@dest.test', 'x@blocked.test', 'y@blocked.test']);
  assert.ok(dropped.every((e) => e.reason === 'suppressed'));
  // the message that had only a suppressed recipient is gone, body and all
  assert.equal((await request(`${m.api}/message/${(s2.body as unknown as SendReply).id}`)).status, 404);
  assert.equal((await m.master.store.census()).meta, 0);
  // the list survives a restart too (it is in the queue database)
  await m.master.stop();
  const again = await startMaster({ zones: { default: { processes: 0 } } }, dir);
  cleanup.push(() => again.master.stop());
  const list = (await request(`${again.api}/admin/suppression`)).body.entries as { value: string; reason?: string }[];
  assert.deepEqual(list.map((e) => e.value).sort(), ['blocked.test', 'nope@dest.test']);
  const zonemta = (await request(`${again.api}/suppressionlist`)).body.suppressed as Record<string, string>[];
  assert.ok(zonemta.some((e) => e.domain === 'blocked.test' && /^[0-9a-f]{24}$/.test(e.id!)));
});
