/**
 * Inbox webhooks (lib/inbound/webhooks.ts over lib/webhooks/sender.ts): an endpoint that fails
 * twice and then answers gets the event once more each time, the same event id and a valid
 * signature every time, and then no more; a notification not delivered when Sluice stops goes out
 * after the restart; a domain's own endpoint gets its mail; the tries show at
 * GET /api/webhooks/deliveries; a hanging endpoint never delays the 250.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { signBody } from '../../lib/webhooks/sign.js';
import { waitFor } from '../helpers/delivery-kit.js';
import { startReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';

const SECRET = 'inbox-hook-secret';

interface Hit {
  eventId: string;
  attempt: string;
  valid: boolean;
  body: { event: string; inbox: string; message: { id: string; subject: string } };
}

/** An endpoint on loopback answering each request with the next status of `answers` (then 200). */
async function endpoint(answers: number[] = []): Promise<{ url: string; hits: Hit[]; hang: boolean; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const state = { hang: false };
  const server = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      const raw = Buffer.concat(parts).toString();
      const ts = String(req.headers['x-sluice-timestamp']);
      hits.push({ eventId: String(req.headers['x-sluice-event-id']), attempt: String(req.headers['x-sluice-attempt']), valid: req.headers['x-sluice-signature'] === signBody(SECRET, ts, raw), body: JSON.parse(raw) as Hit['body'] });
      if (state.hang) return;
      res.writeHead(answers.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cleanup = async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    hits,
    get hang() {
      return state.hang;
    },
    set hang(v: boolean) {
      state.hang = v;
    },
    close: cleanup,
  };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

test('an endpoint that fails twice gets the event again each time, signed, one event id, then no more', async () => {
  const ep = await endpoint([500, 503]);
  closers.push(() => ep.close());
  const r = await startReceiver({ webhook: { url: ep.url, secret: SECRET, retrySchedule: ['100ms', '200ms', '400ms'] } });
  closers.push(() => r.stop());
  const id = await r.send({ to: 'hooked@inbox.test', subject: 'ping' });
  await waitFor(() => ep.hits.length >= 3, 10_000, 'three tries');
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.equal(ep.hits.length, 3, 'delivered on the third try, and not again');
  assert.deepEqual(ep.hits.map((h) => h.attempt), ['1', '2', '3']);
  assert.equal(new Set(ep.hits.map((h) => h.eventId)).size, 1, 'one event id');
  assert.ok(ep.hits.every((h) => h.valid), 'every try signed');
  assert.deepEqual([ep.hits[0]!.body.event, ep.hits[0]!.body.inbox, ep.hits[0]!.body.message.id, ep.hits[0]!.body.message.subject], ['message', 'hooked@inbox.test', id, 'ping']);
  const log = await r.json<{ pending: unknown[]; recent: { outcome: string; status?: number }[] }>('/api/webhooks/deliveries');
  assert.deepEqual(log.body.pending, []);
  assert.deepEqual(log.body.recent.map((x) => [x.outcome, x.status]), [['delivered', 200], ['retry', 503], ['retry', 500]]);
});

test('a notification not delivered before a stop goes out after the restart, once, with the same event id', async () => {
  const ep = await endpoint([500]);
  closers.push(() => ep.close());
  const dir = tempDir();
  const hook = { webhook: { url: ep.url, secret: SECRET, retrySchedule: ['1500ms'] } };
  const first = await startReceiver(hook, {}, dir);
  await first.send({ to: 'restart@inbox.test', subject: 'survives' });
  await waitFor(() => ep.hits.length === 1, 10_000, 'the first try, answered 500');
  await first.m.master.stop(); // the next try was 1.5 s away: it is in the store, not sent
  const second = await startReceiver(hook, {}, dir);
  closers.push(() => second.stop());
  await waitFor(() => ep.hits.length === 2, 10_000, 'the kept notification, after the restart');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(ep.hits.length, 2, 'once more, no more');
  assert.equal(ep.hits[1]!.eventId, ep.hits[0]!.eventId);
  assert.equal(ep.hits[1]!.attempt, '2');
  assert.ok(ep.hits[1]!.valid);
  assert.equal(ep.hits[1]!.body.message.subject, 'survives');
  assert.deepEqual((await second.json<{ pending: unknown[] }>('/api/webhooks/deliveries')).body.pending, []);
});

test('a domain with its own endpoint gets its mail there; a hanging endpoint never delays the 250', async () => {
  const global = await endpoint();
  const team = await endpoint();
  closers.push(() => global.close(), () => team.close());
  const r = await startReceiver({ webhook: { url: global.url, secret: SECRET, timeout: '20s', domains: { 'team.wild.test': { url: team.url, secret: SECRET } } } });
  closers.push(() => r.stop());
  await r.send({ to: 'a@team.wild.test', subject: 'for the team' });
  await r.send({ to: 'b@inbox.test', subject: 'for everyone' });
  await waitFor(() => global.hits.length === 1 && team.hits.length === 1, 10_000, 'both endpoints');
  assert.equal(team.hits[0]!.body.message.subject, 'for the team');
  assert.equal(global.hits[0]!.body.message.subject, 'for everyone');

  global.hang = true;
  const started = Date.now();
  await r.send({ to: 'c@inbox.test', subject: 'slow endpoint' });
  assert.ok(Date.now() - started < 2000, `the 250 came in ${Date.now() - started} ms`);
  await waitFor(() => global.hits.length === 2, 10_000, 'the request reached the hanging endpoint');
});
