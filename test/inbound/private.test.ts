/**
 * Private inboxes and altinbox aliases (lib/inbound/private.ts, aliases.ts, api/access.ts): a
 * reserved address or domain still receives mail, but without its key it reads as empty on every
 * route (listing, message, raw, Mailsac's, wait, events, WebSocket); the key works in X-Inbox-Key;
 * a new key revokes the old at once; keys are stored hashed. An alias delivers into the real
 * inbox and is recorded as the address the mail was sent to.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';

let r: TestReceiver;
before(async () => {
  r = await startReceiver({ api: { ratePerMinute: 0 } });
});
after(() => r.stop());

async function reserve(target: string): Promise<string> {
  const res = await r.json<{ target: string; key: string }>('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target }) });
  assert.equal(res.status, 201);
  return res.body.key;
}

const withKey = (key: string) => ({ headers: { 'x-inbox-key': key } });

test('a private inbox receives mail, and reads as empty without its key on every route', async () => {
  const key = await reserve('Secret@Inbox.test');
  const id = await r.send({ to: 'secret@inbox.test', subject: 'for your eyes' });

  const list = await r.json<{ messages: unknown[] }>('/api/inboxes/secret@inbox.test/messages');
  assert.deepEqual(list.body.messages, []);
  for (const p of [`/api/inboxes/secret@inbox.test/messages/${id}`, `/api/messages/${id}`, `/api/messages/${id}/raw`, `/api/messages/${id}/text`, '/api/inboxes/secret@inbox.test/messages/latest', `/api/addresses/secret@inbox.test/messages/${id}`, `/api/raw/secret@inbox.test/${id}`]) {
    assert.equal((await r.json(p)).status, 404, p);
  }
  assert.deepEqual((await r.json<{ messages: unknown[] }>('/api/inboxes/secret@inbox.test/messages', { headers: { 'x-inbox-key': 'wrong' } })).body.messages, [], 'a wrong key is no key');
  assert.deepEqual((await r.json<unknown[]>('/api/addresses/secret@inbox.test/messages')).body, []);
  assert.deepEqual((await r.json<{ count: number }>('/api/addresses/secret@inbox.test/message-count')).body.count, 0);
  assert.equal((await r.json('/api/inboxes/secret@inbox.test/wait?timeout=200ms')).status, 204);
  assert.deepEqual((await r.json<{ deleted: number }>('/api/inboxes/secret@inbox.test/messages', { method: 'DELETE' })).body, { deleted: 0 });

  // with the key: everything
  const mine = await r.json<{ messages: { id: string }[] }>('/api/inboxes/secret@inbox.test/messages', withKey(key));
  assert.deepEqual(mine.body.messages.map((m) => m.id), [id]);
  assert.equal((await r.json<{ subject: string }>(`/api/messages/${id}`, withKey(key))).body.subject, 'for your eyes');
  assert.equal((await r.json(`/api/messages/${id}/raw`, withKey(key))).status, 200);
  assert.equal((await r.json<unknown[]>('/api/addresses/secret@inbox.test/messages', { headers: { 'mailsac-key': key } })).body.length, 1);
  assert.equal((await r.json('/api/inboxes/secret@inbox.test/wait', withKey(key))).status, 200);
});

test('live events of a private inbox reach only holders of its key', async () => {
  const key = await reserve('live-secret@inbox.test');
  const base = r.api.replace('http', 'ws');
  const sockets = [new WebSocket(`${base}/api/ws?inboxes=live-secret@inbox.test`), new WebSocket(`${base}/api/ws?inboxes=live-secret@inbox.test`, withKey(key))];
  const heard: string[][] = [[], []];
  sockets.forEach((ws, i) => ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as { type: string; message?: { subject: string } };
    if (m.type === 'message') heard[i]!.push(m.message!.subject);
  }));
  await Promise.all(sockets.map((ws) => new Promise((resolve) => ws.once('open', resolve))));
  await new Promise((resolve) => setTimeout(resolve, 100));
  const stream = await fetch(`${r.api}/api/inboxes/live-secret@inbox.test/events`);
  await r.send({ to: 'live-secret@inbox.test', subject: 'psst' });
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.deepEqual(heard, [[], ['psst']]);
  const reader = stream.body!.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  assert.equal(first, 'retry: 3000\n\n', 'the stream without the key got nothing but its opening');
  await reader.cancel();
  for (const ws of sockets) ws.close();
});

test('a domain can be private; a new key revokes the old one at once; releasing makes it public', async () => {
  const old = await reserve('*.wild.test');
  const id = await r.send({ to: 'x@team.wild.test' });
  assert.equal((await r.json(`/api/messages/${id}`)).status, 404);
  assert.equal((await r.json(`/api/messages/${id}`, withKey(old))).status, 200);
  const fresh = await reserve('*.wild.test');
  assert.equal((await r.json(`/api/messages/${id}`, withKey(old))).status, 404, 'the old key no longer works');
  assert.equal((await r.json(`/api/messages/${id}`, withKey(fresh))).status, 200);
  const listed = await r.json<{ reservations: { target: string }[] }>('/api/private');
  assert.ok(listed.body.reservations.some((x) => x.target === '*.wild.test'));
  assert.ok(!JSON.stringify(listed.body).includes(fresh), 'keys are never listed');
  assert.equal((await r.json('/api/private/*.wild.test', { method: 'DELETE' })).status, 204);
  assert.equal((await r.json(`/api/messages/${id}`)).status, 200);
  assert.equal((await r.json('/api/private/*.wild.test', { method: 'DELETE' })).status, 404);
  const bad = await r.json('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'not a target' }) });
  assert.equal(bad.status, 400);
});

test('keys are stored hashed: the key is nowhere in the store\'s files', async () => {
  const key = await reserve('hashed@inbox.test');
  const dir = path.join(r.m.dir, 'data', 'inbox');
  for (const file of readdirSync(dir)) {
    assert.ok(!readFileSync(path.join(dir, file)).includes(key), `${file} holds the key`);
  }
});

test('altinbox: an alias delivers into the real inbox, recorded as the address it was sent to', async () => {
  const a = await r.json<{ address: string; altinbox: string }>('/api/inboxes/Real@Inbox.test/altinbox');
  assert.equal(a.body.address, 'real@inbox.test');
  assert.match(a.body.altinbox, /^alt-[a-z2-7]{16}@inbox\.test$/);
  assert.equal((await r.json<{ altinbox: string }>('/api/inboxes/real@inbox.test/altinbox')).body.altinbox, a.body.altinbox, 'the same alias every time');
  assert.notEqual((await r.json<{ altinbox: string }>('/api/inboxes/other@inbox.test/altinbox')).body.altinbox, a.body.altinbox);
  const id = await r.send({ to: a.body.altinbox, subject: 'via the alias' });
  const listed = await r.json<{ messages: { id: string; envelope: { to: string[] } }[] }>('/api/inboxes/real@inbox.test/messages');
  assert.equal(listed.body.messages[0]?.id, id);
  assert.deepEqual(listed.body.messages[0]?.envelope.to, [a.body.altinbox]);
  const mailsac = await r.json<{ inbox: string; originalInbox: string }[]>('/api/addresses/real@inbox.test/messages');
  assert.deepEqual([mailsac.body[0]?.inbox, mailsac.body[0]?.originalInbox], ['real@inbox.test', a.body.altinbox]);
  // an alt- address never given out is an ordinary inbox
  const plain = await r.send({ to: 'alt-aaaaaaaaaaaaaaaa@inbox.test' });
  assert.equal((await r.json<{ messages: { id: string }[] }>('/api/inboxes/alt-aaaaaaaaaaaaaaaa@inbox.test/messages')).body.messages[0]?.id, plain);
  // a private inbox's alias needs its key
  const key = await reserve('hidden@inbox.test');
  assert.equal((await r.json('/api/inboxes/hidden@inbox.test/altinbox')).status, 404);
  assert.equal((await r.json('/api/inboxes/hidden@inbox.test/altinbox', withKey(key))).status, 200);
});
