/**
 * Waiting for mail instead of polling (lib/inbound/api/live-routes.ts, ws-route.ts): a waiter is
 * answered within 100 ms of the 250; `after` and `since` pick what counts as new; a timeout is
 * 204; many waiters are released by one message; an event stream delivers each new message, and
 * after a reconnect with Last-Event-ID what it missed, once; a WebSocket subscriber hears of its
 * inboxes only; streams are capped per client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { budgetMs } from '../helpers/budget.js';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0, maxStreamsPerIp: 3 } });
});
after(() => r.stop());

interface Msg {
  id: string;
  subject: string;
}

async function callWait(path: string): Promise<{ status: number; body: Msg | undefined; at: number }> {
  const res = await fetch(`${r.api}${path}`, { signal: AbortSignal.timeout(20_000) });
  const at = performance.now();
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Msg) : undefined, at };
}

test('a waiter is answered with the message within 100 ms of its 250', async () => {
  const waiting = callWait('/api/inboxes/waiter@inbox.test/wait?timeout=10s');
  await new Promise((resolve) => setTimeout(resolve, 100));
  const id = await r.send({ to: 'waiter@inbox.test', subject: 'you waited' });
  const acked = performance.now();
  const answer = await waiting;
  assert.equal(answer.status, 200);
  assert.equal(answer.body?.id, id);
  assert.equal(answer.body?.subject, 'you waited');
  // issue 11's 100 ms, for a machine that runs the suite alone (stretched when it is overloaded)
  const bound = budgetMs(100);
  assert.ok(answer.at - acked < bound, `answered ${(answer.at - acked).toFixed(1)} ms after the 250 (bound ${bound} ms)`);
});

test('after and since: the first message newer than an id, or since a time; 204 on timeout', async () => {
  const first = await r.send({ to: 'seq@inbox.test', subject: 'one' });
  const second = await r.send({ to: 'seq@inbox.test', subject: 'two' });
  const since = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 5));
  // already there: the first message newer than `first` is `second`, at once
  assert.equal((await callWait(`/api/inboxes/seq@inbox.test/wait?after=${first}`)).body?.id, second);
  // nothing newer than `second` yet: a later message releases it
  const waiting = callWait(`/api/inboxes/seq@inbox.test/wait?after=${second}&timeout=10s`);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const third = await r.send({ to: 'seq@inbox.test', subject: 'three' });
  assert.equal((await waiting).body?.id, third);
  assert.equal((await callWait(`/api/inboxes/seq@inbox.test/wait?since=${since}`)).body?.id, third);
  assert.equal((await callWait(`/api/inboxes/seq@inbox.test/wait?since=${new Date(since).toISOString()}`)).body?.id, third);
  // without either: the newest
  assert.equal((await callWait('/api/inboxes/seq@inbox.test/wait')).body?.subject, 'three');
  const started = Date.now();
  const none = await callWait(`/api/inboxes/seq@inbox.test/wait?after=${third}&timeout=300ms`);
  assert.equal(none.status, 204);
  assert.ok(Date.now() - started >= 280);
  assert.equal((await callWait('/api/inboxes/seq@inbox.test/wait?timeout=1h')).status, 400);
  assert.equal((await callWait('/api/inboxes/seq@inbox.test/wait?after=nope')).status, 400);
});

test('200 waiters on one inbox are all released by one message; a tag waiter only by its tag', async () => {
  const waiters = Array.from({ length: 200 }, () => callWait('/api/inboxes/crowd@inbox.test/wait?timeout=15s&since=' + Date.now()));
  const tagged = callWait(`/api/inboxes/crowd+vip@inbox.test/wait?timeout=15s&since=${Date.now()}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  const id = await r.send({ to: 'crowd@inbox.test', subject: 'for everyone' });
  const answers = await Promise.all(waiters);
  assert.ok(answers.every((a) => a.status === 200 && a.body?.id === id));
  const vip = await r.send({ to: 'crowd+vip@inbox.test', subject: 'for vip' });
  assert.equal((await tagged).body?.id, vip);
});

/** Reads server-sent events from a stream until `count` arrived. */
async function readEvents(res: Response, count: number): Promise<{ id: string; event: string; data: Msg }[]> {
  const out: { id: string; event: string; data: Msg }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body!.getReader();
  while (out.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
      if (fields.event === 'message') out.push({ id: fields.id!, event: fields.event, data: JSON.parse(fields.data!) as Msg });
    }
  }
  await reader.cancel();
  return out;
}

test('server-sent events: each new message within 1 s; a reconnect with Last-Event-ID gets what it missed, once', async () => {
  const controller = new AbortController();
  const res = await fetch(`${r.api}/api/inboxes/stream@inbox.test/events`, { signal: controller.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const reading = readEvents(res, 2);
  const a = await r.send({ to: 'stream@inbox.test', subject: 'a' });
  const sentAt = Date.now();
  const b = await r.send({ to: 'stream@inbox.test', subject: 'b' });
  await r.send({ to: 'other@inbox.test', subject: 'not for this stream' });
  const got = await reading;
  assert.ok(Date.now() - sentAt < budgetMs(1000));
  assert.deepEqual(got.map((e) => [e.id, e.data.subject]), [[a, 'a'], [b, 'b']]);
  controller.abort();

  // away: two more arrive; the reconnect gets them, in order, then the live one
  const c = await r.send({ to: 'stream@inbox.test', subject: 'c' });
  const d = await r.send({ to: 'stream@inbox.test', subject: 'd' });
  const reconnect = new AbortController();
  const again = await fetch(`${r.api}/api/inboxes/stream@inbox.test/events`, { headers: { 'last-event-id': b }, signal: reconnect.signal });
  const replay = readEvents(again, 3);
  await new Promise((resolve) => setTimeout(resolve, 200));
  const e = await r.send({ to: 'stream@inbox.test', subject: 'e' });
  assert.deepEqual((await replay).map((x) => x.id), [c, d, e]);
  reconnect.abort();
});

test('event streams and WebSockets are capped per client IP: 429 past the cap', async () => {
  await new Promise((resolve) => setTimeout(resolve, 300)); // the streams of the test before have closed
  const controllers = Array.from({ length: 3 }, () => new AbortController());
  const open = await Promise.all(controllers.map((c) => fetch(`${r.api}/api/inboxes/cap@inbox.test/events`, { signal: c.signal })));
  assert.deepEqual(await Promise.all(open.map(async (res) => (res.status === 200 ? 200 : `${res.status} ${await res.text()}`))), [200, 200, 200]);
  const over = await fetch(`${r.api}/api/inboxes/cap@inbox.test/events`);
  assert.equal(over.status, 429);
  await over.text();
  for (const c of controllers) c.abort();
  // a slot is given back when the server sees the connection close
  await new Promise((resolve) => setTimeout(resolve, 300));
  const later = new AbortController();
  assert.equal((await fetch(`${r.api}/api/inboxes/cap@inbox.test/events`, { signal: later.signal })).status, 200);
  later.abort();
});

function openSocket(query = ''): Promise<{ ws: WebSocket; messages: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${r.api.replace('http', 'ws')}/api/ws${query}`);
    const messages: Record<string, unknown>[] = [];
    ws.on('message', (data) => messages.push(JSON.parse(data.toString()) as Record<string, unknown>));
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('error', reject);
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a WebSocket subscriber hears of the inboxes it subscribed to, and of no other', async () => {
  await new Promise((resolve) => setTimeout(resolve, 300)); // earlier streams of this client gone
  const alice = await openSocket('?inboxes=alice@inbox.test');
  const bob = await openSocket();
  bob.ws.send(JSON.stringify({ type: 'subscribe', inboxes: ['Bob@Inbox.test'] }));
  await until(() => alice.messages.some((m) => m.type === 'subscribed') && bob.messages.some((m) => m.type === 'subscribed'), 'subscribed');
  const forAlice = await r.send({ to: 'alice@inbox.test', subject: 'hi alice' });
  const forBob = await r.send({ to: 'bob@inbox.test', subject: 'hi bob' });
  await until(() => alice.messages.some((m) => m.type === 'message') && bob.messages.some((m) => m.type === 'message'), 'the messages');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const ids = (list: Record<string, unknown>[]) => list.filter((m) => m.type === 'message').map((m) => (m.message as Msg).id);
  assert.deepEqual(ids(alice.messages), [forAlice]);
  assert.deepEqual(ids(bob.messages), [forBob]);

  bob.ws.send('not json');
  bob.ws.send(JSON.stringify({ type: 'subscribe', inboxes: ['not an address'] }));
  await until(() => bob.messages.filter((m) => m.type === 'error').length === 2, 'two errors');
  alice.ws.close();
  bob.ws.close();
});

test('a stop does not wait for listeners: streams and sockets end, a waiter gets 503', async () => {
  const own = await startReceiver();
  const stream = await fetch(`${own.api}/api/inboxes/s@inbox.test/events`);
  const waiter = fetch(`${own.api}/api/inboxes/w@inbox.test/wait?timeout=60s&since=${Date.now()}`);
  const ws = new WebSocket(`${own.api.replace('http', 'ws')}/api/ws?inboxes=s@inbox.test`);
  await new Promise((resolve) => ws.once('open', resolve));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  const started = Date.now();
  await own.stop();
  assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`);
  assert.equal((await waiter).status, 503);
  assert.equal(await closed, 1001);
  const rest = await stream.text();
  assert.match(rest, /^retry: 3000/);
});
