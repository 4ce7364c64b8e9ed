/**
 * The POP3 door's deadlines and its stop, with short limits: an unfinished command line, silence,
 * a long session, a client that stops reading a large RETR (cut off, and the server holds only a
 * bounded part of the message meanwhile), and a stop of Sluice with a client logged in. None of
 * them deletes what the session marked.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver, type TestReceiver } from '../../helpers/inbound.js';
import { tempDir } from '../../helpers/master.js';
import { Pop3Talk } from '../../helpers/pop3-talk.js';

const COMMAND_MS = 400;
const IDLE_MS = 800;
const SESSION_MS = 3000;
const LIMITS = { pop3: { commandTimeout: `${COMMAND_MS}ms`, socketTimeout: `${IDLE_MS}ms`, sessionTimeout: `${SESSION_MS}ms` }, api: { ratePerMinute: 0 }, maxSize: '40MB' };

const dir = tempDir();
let r: TestReceiver;
let key: string;

before(async () => {
  r = await startReceiver(LIMITS, {}, dir);
  const res = await r.json<{ key: string }>('/api/private', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ target: 'slow@inbox.test' }) });
  key = res.body.key;
  await r.send({ to: 'slow@inbox.test', subject: 'keep me' });
});
after(() => r.stop());

async function login(): Promise<Pop3Talk> {
  const { talk } = await Pop3Talk.connect(r.m.port('pop3'));
  await talk.ok('USER slow@inbox.test');
  await talk.ok(`PASS ${key}`);
  return talk;
}

async function count(): Promise<number> {
  const talk = await login();
  const stat = await talk.ok('STAT');
  await talk.ok('QUIT');
  return Number(stat.split(' ')[1]);
}

test('a command line not finished within commandTimeout ends the session; what it marked stays', async () => {
  const talk = await login();
  await talk.ok('DELE 1');
  talk.write('NOO');
  const started = Date.now();
  assert.equal(await talk.next(), `-ERR A command line took longer than ${COMMAND_MS} ms; closing (nothing was deleted)`);
  const waited = Date.now() - started;
  assert.ok(waited >= COMMAND_MS - 20 && waited < COMMAND_MS + 2000, `closed after ${waited} ms`);
  await talk.waitClosed();
  assert.equal(await count(), 1);
});

test('a client silent past socketTimeout is disconnected; a trickled line does not reset the deadline', async () => {
  const talk = await login();
  const started = Date.now();
  assert.equal(await talk.next(), `-ERR Waiting for a command took longer than ${IDLE_MS} ms; closing (nothing was deleted)`);
  assert.ok(Date.now() - started >= IDLE_MS - 20);
  await talk.waitClosed();

  // one byte every 100 ms: each is "activity", but the line must still end within commandTimeout
  const trickler = await login();
  const timer = setInterval(() => trickler.write('N'), 100);
  try {
    assert.match((await trickler.next()) ?? '', /^-ERR A command line took longer than/);
  } finally {
    clearInterval(timer);
  }
});

test('a session ends at sessionTimeout however busy it is', async () => {
  const talk = await login();
  const started = Date.now();
  let last: string | undefined;
  for (let i = 0; i < 100; i++) {
    talk.write('NOOP\r\n');
    last = await talk.next();
    if (last !== '+OK') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(last, `-ERR The session took longer than ${SESSION_MS / 1000} s; closing (nothing was deleted)`);
  const took = Date.now() - started;
  assert.ok(took >= SESSION_MS - 300 && took < SESSION_MS + 3000, `ended after ${took} ms`);
});

test('a client that stops reading a large RETR holds no more than a bounded part of it in memory, and is cut off', async () => {
  const size = 30 * 1024 * 1024;
  const body = ('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(2) + '\n').repeat(Math.ceil(size / 73));
  const id = await r.send({ to: 'slow@inbox.test', subject: 'big', text: body });
  // a login waits for the parse of mail not parsed yet (Inbox.list does); done first here, so that
  // this file's short session deadline measures the transfer alone
  assert.equal((await r.json(`/api/messages/${id}`, { headers: { 'x-inbox-key': key } })).status, 200);
  const talk = await login();
  const before = process.memoryUsage().arrayBuffers;
  let received = 0;
  let reading = false;
  talk.socket.removeAllListeners('data');
  talk.socket.on('data', (d: Buffer) => {
    received += d.length;
    // stop reading as soon as the reply starts coming: the server must wait, not buffer
    if (!reading) talk.socket.pause();
  });
  talk.write('RETR 2\r\n');
  // the server fills the socket buffers, then waits for the client; sample while it waits
  let peak = 0;
  for (let i = 0; i < 10; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  }
  assert.ok(peak < 8 * 1024 * 1024, `the server held ${(peak / 1048576).toFixed(1)} MB of a ${size / 1048576} MB message for a client that reads nothing`);
  // past socketTimeout without reading, the server gives up on the client
  await new Promise((resolve) => setTimeout(resolve, IDLE_MS + 400));
  const closed = new Promise<void>((resolve) => talk.socket.once('close', () => resolve()));
  reading = true;
  talk.socket.resume();
  await closed;
  assert.ok(received < size, `the transfer was cut off (${received} of ${size} bytes)`);
  assert.equal(await count(), 2, 'a cut-off RETR deletes nothing');
});

test('a stop ends the sessions at once: a logged-in client is told, nothing it marked is deleted', async () => {
  const talk = await login();
  await talk.ok('DELE 1');
  const started = Date.now();
  await r.m.master.stop();
  assert.ok(Date.now() - started < 5000, `the stop took ${Date.now() - started} ms`);
  assert.equal(await talk.next(), '-ERR [SYS/TEMP] Sluice is shutting down; nothing was deleted, try again later');
  await talk.waitClosed();
  // the same store, started again: both messages are there
  r = await startReceiver(LIMITS, {}, dir);
  assert.equal(await count(), 2);
});
