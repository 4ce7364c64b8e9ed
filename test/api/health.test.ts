/**
 * The health split (lib/api/health-routes.ts, readiness.ts): /health/live answers whenever the
 * process does, /health/ready only when the instance can take and move mail, /health as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readiness, type ReadinessSources } from '../../lib/api/readiness.js';
import { startFakeMx } from '../helpers/fakemx.js';
import { startMaster } from '../helpers/master.js';
import { submitter, waitFor } from '../helpers/delivery-kit.js';

interface Ready {
  status: string;
  ready: boolean;
  listeners: boolean;
  db: { open: boolean; writable: boolean; diskRoom: boolean };
  zones: Record<string, { workers: number; stalled: boolean; lastAttempt: string | null }>;
}

test('/health/live and /health/ready answer 200 once the workers are connected; /health keeps its shape', { timeout: 60_000 }, async () => {
  const mx = await startFakeMx({ tls: false });
  const m = await startMaster({ zones: { default: { processes: 1, route: { host: mx.host, port: mx.port } }, idle: { processes: 0 } } });
  try {
    const live = await fetch(`${m.api}/health/live`);
    assert.equal(live.status, 200);
    assert.deepEqual(await live.json(), { status: 'ok' });

    let body: Ready | undefined;
    await waitFor(async () => {
      const res = await fetch(`${m.api}/health/ready`);
      body = (await res.json()) as Ready;
      return res.status === 200;
    }, 20_000, 'ready');
    assert.equal(body!.status, 'ready');
    assert.deepEqual(body!.db, { open: true, writable: true, diskRoom: true });
    assert.equal(body!.listeners, true);
    assert.equal(body!.zones.default!.workers, 1);
    assert.equal(body!.zones.default!.stalled, false);
    // a zone without workers (acceptance only) is not waited for
    assert.equal(body!.zones.idle, undefined);

    await m.master.store.counted;
    const health = await fetch(`${m.api}/health`);
    assert.equal(health.status, 200);
    const h = (await health.json()) as { status: string; queue: Record<string, unknown> };
    assert.equal(h.status, 'ok');
    assert.deepEqual(Object.keys(h.queue).sort(), ['accepting', 'commits', 'db', 'deferred', 'freeBytes', 'loading', 'queued']);
    assert.equal(h.queue.loading, false);
  } finally {
    await m.stop();
    await mx.stop();
  }
});

test('/health/ready is 503 while a zone with due rows makes no attempt for queue.stalledAfter, and 200 again once nothing is due', { timeout: 60_000 }, async () => {
  const mx = await startFakeMx({ tls: false });
  // one message per minute to a domain: the second message to it stays due, untried
  const m = await startMaster({
    queue: { stalledAfter: '1s' },
    zones: { default: { processes: 1, domainRatePerMinute: 1, route: { host: mx.host, port: mx.port } } },
  });
  const smtp = submitter(m.smtpPort, 1);
  try {
    await waitFor(async () => (await fetch(`${m.api}/health/ready`)).status === 200, 20_000, 'ready at first');
    await smtp.send({ to: 'a@slow.test', testId: 'first' });
    await smtp.send({ to: 'b@slow.test', testId: 'second' });
    await mx.waitFor(1);
    let body: Ready | undefined;
    await waitFor(async () => {
      const res = await fetch(`${m.api}/health/ready`);
      body = (await res.json()) as Ready;
      return res.status === 503;
    }, 15_000, 'not ready while stalled');
    assert.equal(body!.status, 'not ready');
    assert.equal(body!.zones.default!.stalled, true);
    assert.equal(body!.zones.default!.workers, 1, 'the worker is connected: only the stall makes it not ready');
    assert.ok(body!.zones.default!.lastAttempt, 'the first message was attempted');
    // the operator clears the stuck row: nothing is due, ready again
    const zone = (await (await fetch(`${m.api}/queue/default`)).json()) as { queued: number };
    assert.equal(zone.queued, 1);
    for await (const meta of m.master.store.listMessages({ limit: 100 })) {
      const res = await fetch(`${m.api}/message/${meta.id}`, { method: 'DELETE' });
      assert.equal(res.status, 200);
    }
    await waitFor(async () => (await fetch(`${m.api}/health/ready`)).status === 200, 10_000, 'ready again');
  } finally {
    smtp.close();
    await m.stop();
    await mx.stop();
  }
});

test('Readiness: not ready without a connected worker in a zone that runs them, or with the queue database closed, not writable or its disk full', async () => {
  let workers: Record<string, number> = { default: 1, bulk: 0 };
  let db = { open: true, writable: true, diskRoom: true };
  const sources: ReadinessSources = {
    stalledAfterMs: 60_000,
    zones: ['default', 'bulk'],
    listenersUp: () => true,
    db: () => db,
    workers: () => workers,
    dueBefore: async () => true,
  };
  const r = new Readiness(sources);
  assert.equal((await r.check()).ready, false, 'bulk has no worker');
  workers = { default: 1, bulk: 2 };
  assert.equal((await r.check()).ready, true);
  for (const bad of [{ open: false, writable: false, diskRoom: true }, { open: true, writable: false, diskRoom: true }, { open: true, writable: true, diskRoom: false }]) {
    db = bad;
    assert.equal((await r.check()).ready, false, JSON.stringify(bad));
  }
  db = { open: true, writable: true, diskRoom: true };
  assert.equal((await new Readiness({ ...sources, listenersUp: () => false }).check()).ready, false, 'a listener is not up');
});
