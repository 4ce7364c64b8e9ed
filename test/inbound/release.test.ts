/**
 * Release (lib/inbound/release.ts, api/release-route.ts): a stored message goes to Sluice's own
 * outbound queue, through ingest, for recipients the allowlist names, and a worker delivers it to
 * a test SMTP server; a recipient outside the list is refused (400) and nothing goes; the outcome
 * is kept with the message.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { waitFor } from '../helpers/delivery-kit.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let mx: FakeMx;
let r: TestReceiver;
before(async () => {
  mx = await startFakeMx({ mode: 'accept', tls: false });
  r = await startReceiver(
    { api: { ratePerMinute: 0 }, release: { allow: ['qa@dest.test', '*.team.test'], from: 'release@sluice.test' } },
    { zones: { default: { processes: 1, route: mx.route } } },
  );
});
after(async () => {
  await r.stop();
  await mx.stop();
});

const release = (id: string, to: string[]) => r.json<{ id: string; release: { queueId?: string; to: string[] }; error?: string; message?: string }>(`/api/messages/${id}/release`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ to }) });

test('a release to allowed recipients is queued and delivered; the outcome is kept with the message', async () => {
  const id = await r.send({ from: 'app@src.test', to: 'caught@inbox.test', subject: 'Look at me in a real client', text: 'hello' });
  const res = await release(id, ['qa@dest.test', 'lead@a.team.test']);
  assert.equal(res.status, 202);
  assert.match(res.body.release.queueId ?? '', /^[0-9a-f]+$/);
  // one delivery per recipient domain
  const delivered = () => mx.transactions.filter((t) => t.data !== undefined);
  await waitFor(() => delivered().flatMap((t) => t.to).length === 2, 20_000, 'delivered to the test server');
  assert.deepEqual(delivered().flatMap((t) => t.to).sort(), ['lead@a.team.test', 'qa@dest.test']);
  for (const t of delivered()) {
    assert.equal(t.from, 'release@sluice.test');
    assert.match(t.data!.toString(), /Subject: Look at me in a real client/);
  }
  const msg = await r.json<{ releases: { to: string[]; queueId: string }[] }>(`/api/messages/${id}`);
  assert.deepEqual(msg.body.releases.map((x) => [x.to, x.queueId]), [[['qa@dest.test', 'lead@a.team.test'], res.body.release.queueId]]);
});

test('a recipient outside the allowlist is refused, and nothing goes', async () => {
  const id = await r.send({ to: 'caught@inbox.test', subject: 'not for everyone' });
  const before = mx.transactions.length;
  const res = await release(id, ['qa@dest.test', 'stranger@elsewhere.test']);
  assert.equal(res.status, 400);
  assert.match(res.body.message ?? '', /stranger@elsewhere\.test is not in inbound\.release\.allow/);
  assert.equal((await release(id, ['not an address'])).status, 400);
  assert.equal((await release('0000000000000000AAAAAAAAAAAAAAAAAAAAAA', ['qa@dest.test'])).status, 404);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(mx.transactions.length, before);
  const msg = await r.json<{ releases: unknown[] }>(`/api/messages/${id}`);
  assert.deepEqual(msg.body.releases, []);
});
