/**
 * Scheduling and the operator's handles, against real workers and a fakemx:
 *   - connectionsPerDomain 1 with 2 processes: never two sessions to that domain at once;
 *   - domainRatePerMinute shared across the processes of a zone (6/min, 2 processes, 10 messages:
 *     only 6 go in the first seconds; another domain is not held up);
 *   - several recipients of one domain in one transaction, up to maxRecipientsPerTransaction,
 *     also when the message's recipients alternate between domains;
 *   - session reuse: two messages in a row to one host use one connection;
 *   - delayed delivery: a Date header in the future holds the first attempt (ingest ignores a
 *     Date less than 60 s ahead, clock skew; so the test uses 90 s and POST /message/:id/retry
 *     to release it);
 *   - GET /message/:id shows a deferred row's attempts and last reply; POST /message/:id/retry
 *     makes it due now.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeMx } from '../helpers/fakemx.js';
import { startLoggedMaster, submitter, waitFor, maxOverlap, messageOf } from '../helpers/delivery-kit.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function setup(zone: Record<string, unknown>, extra: Record<string, unknown> = {}, mxOpts: Parameters<typeof startFakeMx>[0] = {}) {
  const mx = await startFakeMx({ tls: false, ...mxOpts });
  cleanup.push(() => mx.stop());
  const m = await startLoggedMaster({ ...extra, zones: { default: { route: mx.route, ...zone } } });
  cleanup.push(() => m.stop());
  await waitFor(() => m.master.supervisor!.pids().length === Number(zone.processes ?? 1), 5000, 'workers up');
  const smtp = submitter(m.smtpPort);
  cleanup.push(async () => smtp.close());
  return { mx, m, smtp };
}

test('connectionsPerDomain 1 across 2 processes: never two connections to that domain at once', async () => {
  const { mx, smtp } = await setup({ processes: 2, connections: 5, connectionsPerDomain: 1 }, { delivery: { sessionIdle: '1s' } }, { mode: { kind: 'delayDot', ms: 200 } });
  const N = 6;
  await Promise.all(Array.from({ length: N }, (_, i) => smtp.send({ to: `r${i}@dest.test`, testId: `cpd-${i}` })));
  await mx.waitFor(N, 15_000);
  await mx.waitUntil(() => mx.connections.every((c) => c.closedAt !== undefined), 10_000, () => 'idle sessions not closed');
  const overlap = maxOverlap(mx.connections.map((c) => ({ start: c.connectedAt, end: c.closedAt! })));
  const txOverlap = maxOverlap(mx.transactions.map((t) => ({ start: t.mailAt, end: t.dataEndAt! + 200 })));
  console.log(`# connectionsPerDomain 1: ${mx.connections.length} connections, at most ${overlap} open at once, ${txOverlap} transactions at once`);
  assert.equal(txOverlap, 1, 'one transaction at a time');
  assert.equal(overlap, 1, 'one connection at a time, idle pooled ones included');
});

test('domainRatePerMinute 6 shared by 2 processes: 6 of 10 go in the first seconds; another domain is not held up', async () => {
  const { mx, m, smtp } = await setup({ processes: 2, connections: 5, domainRatePerMinute: 6 });
  await Promise.all(Array.from({ length: 10 }, (_, i) => smtp.send({ to: `r${i}@dest.test`, testId: `rate-${i}` })));
  const sent = Date.now();
  // generous deadlines for a loaded machine (two workers start here): the window is a sliding
  // minute, so a seventh to dest.test could only go a minute after the first
  await mx.waitFor(6, 15_000).catch((err: Error) => {
    const outcomes = m.logs.filter((l) => ['DELIVERED', 'DEFERRED', 'BOUNCED', 'LEASES_RELEASED'].includes(String(l.event)));
    throw new Error(`${err.message}; what the master saw: ${JSON.stringify(outcomes.map((l) => [l.event, l.recipient, l.response]))}`);
  });
  await Promise.all([0, 1].map((i) => smtp.send({ to: `o${i}@other.test`, testId: `other-${i}` })));
  await mx.waitUntil(() => mx.copiesById().get('other-0') === 1 && mx.copiesById().get('other-1') === 1, 10_000, () => 'other.test held up by dest.test');
  await new Promise((r) => setTimeout(r, Math.max(0, 3000 - (Date.now() - sent))));
  const toDest = mx.transactions.filter((t) => t.to.some((r) => r.endsWith('@dest.test')) && t.outcome === 'accepted').length;
  console.log(`# domainRatePerMinute 6, 2 processes: ${toDest} of 10 delivered to dest.test in the first ${Date.now() - sent} ms`);
  assert.equal(toDest, 6);
});

test('recipients of one domain share a transaction up to maxRecipientsPerTransaction, also when domains alternate', async () => {
  const { mx, smtp } = await setup({ processes: 1, connections: 4 }, { delivery: { maxRecipientsPerTransaction: 3 } });
  await smtp.send({ to: Array.from({ length: 7 }, (_, i) => `u${i}@dest.test`), testId: 'many' });
  await smtp.send({ to: ['a1@x.test', 'b1@y.test', 'a2@x.test', 'b2@y.test', 'a3@x.test'], testId: 'mixed' });
  await mx.waitUntil(() => mx.transactions.filter((t) => t.outcome === 'accepted').reduce((n, t) => n + t.to.length, 0) >= 12, 10_000, () => 'not all 12 recipients delivered');
  const many = mx.transactions.filter((t) => t.testId === 'many').map((t) => t.to.length).sort();
  const mixed = mx.transactions.filter((t) => t.testId === 'mixed').map((t) => t.to.slice().sort().join(',')).sort();
  console.log(`# maxRecipientsPerTransaction 3: 7 recipients → ${JSON.stringify(many)}; alternating domains → ${JSON.stringify(mixed)}`);
  assert.deepEqual(many, [1, 3, 3]);
  assert.deepEqual(mixed, ['a1@x.test,a2@x.test,a3@x.test', 'b1@y.test,b2@y.test']);
});

test('session reuse: two messages in a row to the same host use one connection', async () => {
  const { mx, smtp } = await setup({ processes: 1, connections: 2 }, { delivery: { sessionIdle: '5s' } });
  await smtp.send({ to: 'a@dest.test', testId: 'reuse-1' });
  await mx.waitFor(1, 5000);
  await smtp.send({ to: 'b@dest.test', testId: 'reuse-2' });
  await mx.waitFor(2, 5000);
  const [t1, t2] = mx.transactions;
  assert.equal(t2!.connectionId, t1!.connectionId, 'same SMTP session');
  assert.equal(t2!.remotePort, t1!.remotePort, 'same TCP connection (same client port)');
  assert.equal(mx.connections.length, 1);
});

test('a Date header in the future holds the first attempt; POST /message/:id/retry releases it', async () => {
  const { mx, m, smtp } = await setup({ processes: 1, connections: 2 });
  const dateMs = Math.floor(Date.now() / 1000) * 1000 + 90_000;
  const id = await smtp.send({ to: 'later@dest.test', testId: 'later', headers: { Date: new Date(dateMs).toUTCString() } });
  const view = await messageOf(m.api, id);
  assert.ok(view);
  assert.equal(Date.parse(view.messages[0]!.queued), dateMs, 'due at the Date header');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(mx.connections.length, 0, 'no attempt before its time');
  const res = await fetch(`${m.api}/message/${id}/retry`, { method: 'POST' });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { rescheduled: number }).rescheduled, 1);
  await mx.waitFor(1, 3000);
});

test('GET /message/:id shows a deferred row with its attempts and last reply; POST /message/:id/retry makes it due now', async () => {
  const { mx, m, smtp } = await setup(
    { processes: 1, connections: 2 },
    { queue: { retrySchedule: ['1h'] } },
    { mode: { kind: 'tempfail', at: 'RCPT', reply: '451 4.7.1 greylisted, come back later' } },
  );
  const id = await smtp.send({ to: 'grey@dest.test', testId: 'grey' });
  await waitFor(() => m.events('DEFERRED').some((e) => e.id === id), 5000, 'deferred');
  const view = (await messageOf(m.api, id))!;
  const row = view.messages[0]!;
  assert.equal(row.status, 'DEFERRED');
  assert.equal(row.deferred?.count, 1);
  assert.match(String(row.deferred?.response), /451 4\.7\.1 greylisted/);
  assert.equal(row.deferred?.category, 'greylist');
  assert.equal(typeof row.deferred?.mx, 'string', 'the host of the last attempt');
  assert.equal(row.deferred?.tls, false);
  assert.ok(row.deferred!.next - Date.now() > 50 * 60_000, 'next attempt in about an hour');
  mx.setMode('accept');
  const retriedAt = Date.now();
  const res = await fetch(`${m.api}/message/${id}/retry`, { method: 'POST' });
  assert.equal(res.status, 200);
  await mx.waitFor(1, 3000);
  await waitFor(async () => (await messageOf(m.api, id)) === undefined, 3000, 'gone from the queue');
  console.log(`# retry: delivered ${Date.now() - retriedAt} ms after POST /message/:id/retry`);
  assert.equal((await fetch(`${m.api}/message/${id}/retry`, { method: 'POST' })).status, 404, 'a message no longer queued: 404');
});

test('a big backlog for a rate-limited domain does not hold up other domains (more due rows than one scan reads)', async () => {
  const { mx, smtp, m } = await setup({ processes: 1, connections: 4, domainRatePerMinute: 1 });
  // 6 × 1000 recipients at slow.test: 6000 due rows, more than one scheduler pass reads (5000)
  for (let k = 0; k < 6; k++) await smtp.send({ to: Array.from({ length: 1000 }, (_, i) => `u${k}-${i}@slow.test`), testId: `bulk-${k}` });
  await mx.waitFor(1, 5000); // the one slow.test transaction the rate allows
  const sentAt = Date.now();
  await smtp.send({ to: 'x@fast.test', testId: 'fast' });
  await mx.waitUntil(() => mx.copiesById().get('fast') === 1, 5000, () => 'fast.test waited behind the slow.test backlog');
  console.log(`# 6000 rows blocked by a rate limit ahead in the index: fast.test delivered in ${Date.now() - sentAt} ms`);
  assert.equal(mx.transactions.filter((t) => t.to.some((r) => r.endsWith('@slow.test'))).length, 1, 'slow.test kept to its rate');
  void m;
});
