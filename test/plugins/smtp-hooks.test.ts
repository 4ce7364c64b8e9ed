import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import nodemailer from 'nodemailer';
import { hashPassword } from '../../lib/accept/passwords.js';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { userPlugin, waitFor, writePlugin } from '../helpers/plugins.js';

const GUARD = `
export const title = 'Test guard';
export function init(app) {
  const seen = (globalThis.__sluiceSeen = { store: [], release: [], queued: [] });
  app.addHook('smtp:rcpt_to', async (address) => {
    if (address.address.startsWith('blocked@')) throw app.reject(550, 'Recipient blocked by policy', '5.7.1');
    if (address.address.startsWith('crash@')) throw new Error('a bug in the plugin');
    if (address.address.startsWith('plain@')) throw Object.assign(new Error('Plain error with a code'), { responseCode: 553 });
  });
  app.addHook('smtp:auth', (auth) => {
    if (auth.username === 'hookuser' && auth.password === 'hookpass') auth.accept('hook-user@example.test');
    if (auth.username === 'banned') throw app.reject(535, 'Account locked', '5.7.8');
  });
  app.addHook('message:headers', (envelope, info) => {
    if (info.headers.getFirst('subject') === 'reject me') throw app.reject(550, 'Subject not allowed', '5.7.1');
    info.headers.add('X-Guard', 'checked by ' + app.name, Infinity);
  });
  app.addHook('message:store', async (envelope, info) => {
    const chunks = [];
    for await (const c of info.read()) chunks.push(c);
    seen.store.push({ id: envelope.id, size: info.size, messageId: info.messageId, bytes: Buffer.concat(chunks).toString('latin1') });
  });
  app.addHook('message:queue', (envelope) => { seen.queued.push(envelope.id); throw new Error('a failing notification changes nothing'); });
  app.addHook('queue:release', (zone, data) => { seen.release.push([zone, data.id, data.seq, data.reason]); });
  app.addHook('api:mail', (envelope, message) => {
    if (message.subject === 'api-block') throw app.reject(550, 'API subject blocked', '5.7.1');
  });
  app.addRoute({ method: 'GET', url: '/guard/status', handler: async () => ({ ok: true, stored: seen.store.length }) });
}
`;

interface Seen {
  store: { id: string; size: number; messageId: string; bytes: string }[];
  release: [string, string, number, string][];
  queued: string[];
}
const seen = () => (globalThis as unknown as { __sluiceSeen: Seen }).__sluiceSeen;

const TOKEN = 'test-token-123';
const auth = { authorization: `Bearer ${TOKEN}` };
let m: TestMaster;
before(async () => {
  const dir = tempDir();
  const file = writePlugin(dir, 'guard.js', GUARD);
  m = await startMaster(
    {
      smtp: { allowInsecureAuth: true, users: { alice: await hashPassword('alice-pw') } },
      api: { token: TOKEN },
      queue: { chunkSize: '4KB' },
      plugins: { guard: userPlugin(file) },
    },
    dir,
  );
});
after(() => m.stop());

test("a hook's 550 text reaches the SMTP client, over a raw session and through nodemailer", async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<a@src.test>', 250);
  const r = await c.send('RCPT TO:<blocked@dest.test>', 550);
  assert.equal(r.text, '550 5.7.1 Recipient blocked by policy');
  const plain = await c.send('RCPT TO:<plain@dest.test>', 553);
  assert.equal(plain.text, '553 5.0.0 Plain error with a code');
  await c.send('QUIT', 221);
  c.close();

  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await assert.rejects(transport.sendMail({ from: 'a@src.test', to: 'blocked@dest.test', text: 'x' }), (err: Error & { responseCode?: number; response?: string }) => {
    assert.equal(err.responseCode, 550);
    assert.match(err.response ?? '', /5\.7\.1 Recipient blocked by policy/);
    return true;
  });
});

test('a throwing hook gives 451 4.3.0; the same session goes on and delivers its message, and new sessions work', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<a@src.test>', 250);
  const r = await c.send('RCPT TO:<crash@dest.test>', 451);
  assert.equal(r.text, '451 4.3.0 Error: temporary local problem, try again later');
  await c.send('RCPT TO:<ok@dest.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: after a crash\r\n\r\nstill here\r\n.\r\n');
  assert.match((await c.expect(250)).text, /queued as/);
  await c.send('QUIT', 221);
  c.close();
  const c2 = await SmtpTalk.connect(m.smtpPort);
  await c2.expect(220);
  await c2.send('EHLO again.test', 250);
  c2.close();
});

test('message:headers adds a header that is stored; message:store reads the whole message as it will be queued', async () => {
  const body = Array.from({ length: 400 }, (_, i) => `line ${i} of a body that spans several 4 KB chunks`).join('\r\n') + '\r\n';
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  const info = await transport.sendMail({ from: 'a@src.test', to: 'r@dest.test', subject: 'stored', text: body });
  const id = /queued as (\w+)/.exec(info.response)![1]!;
  const meta = await m.master.store.getMeta(id);
  assert.ok(meta);
  assert.match(meta.headers, /^X-Guard: checked by guard\r\n/m);
  const stored = seen().store.find((s) => s.id === id);
  assert.ok(stored, 'message:store ran for this message');
  const chunks: Buffer[] = [];
  for await (const c of m.master.store.readBody(id)) chunks.push(c);
  assert.ok(chunks.length > 3, `the body took ${chunks.length} chunks`);
  assert.equal(stored.bytes, meta.headers + Buffer.concat(chunks).toString('latin1'), 'read() = final headers + stored body');
  assert.equal(stored.size, meta.size);
  assert.equal(stored.messageId, meta.messageId);
  assert.ok(seen().queued.includes(id), 'message:queue ran (and its throw changed nothing)');
});

test('a message:headers rejection reaches the client at the end of DATA; the session goes on', async () => {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send('MAIL FROM:<a@src.test>', 250);
  await c.send('RCPT TO:<r@dest.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: reject me\r\n\r\nbody\r\n.\r\n');
  assert.equal((await c.expect(550)).text, '550 5.7.1 Subject not allowed');
  await c.send('RSET', 250);
  c.close();
});

test('smtp:auth: a hook accepts a login as the user it names, refuses one with its reply; [smtp.users] still work', async () => {
  const login = async (user: string, pass: string, code: number) => {
    const c = await SmtpTalk.connect(m.smtpPort);
    await c.expect(220);
    await c.send('EHLO client.test', 250);
    const r = await c.send(`AUTH PLAIN ${Buffer.from(`\0${user}\0${pass}`).toString('base64')}`, code);
    return { c, r };
  };
  const ok = await login('hookuser', 'hookpass', 235);
  await ok.c.send('MAIL FROM:<a@src.test>', 250);
  await ok.c.send('RCPT TO:<r@dest.test>', 250);
  await ok.c.send('DATA', 354);
  ok.c.write('Subject: authed\r\n\r\nx\r\n.\r\n');
  const id = /queued as (\w+)/.exec((await ok.c.expect(250)).text)![1]!;
  ok.c.close();
  assert.equal((await m.master.store.getMeta(id))?.origin.user, 'hook-user@example.test');

  const banned = await login('banned', 'whatever', 535);
  assert.equal(banned.r.text, '535 5.7.8 Account locked');
  banned.c.close();
  (await login('alice', 'alice-pw', 235)).c.close();
  const wrong = await login('alice', 'wrong', 535);
  assert.equal(wrong.r.text, '535 5.7.8 Authentication credentials invalid');
  wrong.c.close();
  (await login('hookuser', 'badpass', 535)).c.close();
});

test('api:mail may refuse a POST /send; a plugin route is served behind the API token', async () => {
  const post = (subject: string) => fetch(`${m.api}/send`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ from: 'a@src.test', to: 'r@dest.test', subject, text: 'x' }) });
  const refused = await post('api-block');
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { message: string }).message, /550 5\.7\.1 API subject blocked/);
  assert.equal((await post('fine')).status, 200);

  assert.equal((await fetch(`${m.api}/guard/status`)).status, 401, 'the token applies to plugin routes');
  const res = await fetch(`${m.api}/guard/status`, { headers: auth });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { ok: boolean; stored: number };
  assert.equal(body.ok, true);
  assert.ok(body.stored >= 1);
});

test('DELETE /message/:id tells queue:release about every row, with reason "deleted"', async () => {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  const info = await transport.sendMail({ from: 'a@src.test', to: ['x@dest.test', 'y@other.test'], subject: 'to delete', text: 'x' });
  const id = /queued as (\w+)/.exec(info.response)![1]!;
  const res = await fetch(`${m.api}/message/${id}`, { method: 'DELETE', headers: auth });
  assert.equal(res.status, 200);
  await waitFor(() => seen().release.filter((r) => r[1] === id).length === 2);
  assert.deepEqual(seen().release.filter((r) => r[1] === id), [
    ['default', id, 1, 'deleted'],
    ['default', id, 2, 'deleted'],
  ]);
});
