/**
 * The hook runner on the SMTP path: an Error with responseCode becomes that reply (with its
 * text), any other throw or a hook that hangs becomes 451 and the server goes on serving, and
 * message:headers may change the stored headers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { SmtpTalk, type Reply } from '../helpers/smtp-talk.js';
import { queueKeyCount } from '../helpers/queue-census.js';

const HOOK_TIMEOUT_MS = 300;

let m: TestMaster;
let dataRefusals = 0;
before(async () => {
  m = await startMaster({ api: { enabled: false }, hooks: { timeout: HOOK_TIMEOUT_MS } });
  const hooks = m.master.hooks;
  hooks.add('smtp:rcpt_to', 'test', (address) => {
    if (address.address === 'nouser@y.test') throw Object.assign(new Error('No such user here'), { responseCode: 550 });
    if (address.address === 'crash@y.test') throw new Error('plugin bug with secret details');
    if (address.address === 'hang@y.test') return new Promise(() => undefined);
    if (address.address === 'enhanced@y.test') throw Object.assign(new Error('Mailbox full'), { responseCode: 452, enhancedStatus: '4.2.2' });
  });
  hooks.add('smtp:mail_from', 'test', (address) => {
    if (address.address === 'banned@x.test') throw Object.assign(new Error('Sender blocked\r\n250 fake'), { responseCode: 554 });
  });
  hooks.add('smtp:connect', 'test', (session) => {
    if (session.remoteAddress === '127.0.0.66') throw Object.assign(new Error('Go away'), { responseCode: 554 });
  });
  hooks.add('smtp:data', 'test', (envelope) => {
    if (envelope.to.includes('refuse-data@y.test')) throw Object.assign(new Error('Not today'), { responseCode: 554 });
    if (envelope.to.includes('leave-early@y.test')) {
      dataRefusals++;
      throw Object.assign(new Error('Not this one'), { responseCode: 554 });
    }
  });
  hooks.add('message:headers', 'test', (envelope, info) => {
    info.headers.add('X-Hooked', `yes ${envelope.id}`);
    if (info.headers.getFirst('subject') === 'reject me') throw Object.assign(new Error('Content refused'), { responseCode: 550 });
  });
});
after(() => m.stop());

async function open(): Promise<SmtpTalk> {
  const c = await SmtpTalk.connect(m.smtpPort);
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  return c;
}

async function ask(c: SmtpTalk, line: string): Promise<Reply> {
  c.write(line + '\r\n');
  const r = await c.next();
  assert.ok(r, `closed after ${line}`);
  return r;
}

test('smtp:rcpt_to throwing an Error with responseCode 550: the client sees 550 and its text', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  const r = await c.send('RCPT TO:<nouser@y.test>', 550);
  assert.match(r.text, /^550 5\.0\.0 No such user here$/);
  const e = await c.send('RCPT TO:<enhanced@y.test>', 452);
  assert.equal(e.text, '452 4.2.2 Mailbox full');
  await c.send('RCPT TO:<fine@y.test>', 250);
  c.close();
});

test('a reply text from a hook cannot inject a second reply line', async () => {
  const c = await open();
  const r = await c.send('MAIL FROM:<banned@x.test>', 554);
  assert.doesNotMatch(r.text, /\n/);
  await c.send('NOOP', 250);
  c.close();
});

test('a hook that throws a plain Error gives 451 without its details; the server keeps serving', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  const r = await c.send('RCPT TO:<crash@y.test>', 451);
  assert.doesNotMatch(r.text, /secret/);
  await c.send('RCPT TO:<fine@y.test>', 250);
  c.close();

  // and a new session works end to end
  const d = await open();
  await d.send('MAIL FROM:<a@x.test>', 250);
  await d.send('RCPT TO:<fine@y.test>', 250);
  await d.send('DATA', 354);
  d.write('Subject: after crash\r\n\r\nok\r\n.\r\n');
  await d.expect(250);
  d.close();
});

test('a hook that never answers times out as 451 within hooks.timeout', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  const started = Date.now();
  await c.send('RCPT TO:<hang@y.test>', 451);
  const tookMs = Date.now() - started;
  assert.ok(tookMs >= HOOK_TIMEOUT_MS - 20 && tookMs < HOOK_TIMEOUT_MS + 1000, `took ${tookMs} ms`);
  c.close();
});

test('smtp:data refusing: the client sees the code after its data, and the session stays in step', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<refuse-data@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: s\r\n\r\n' + 'line of text\r\n'.repeat(5000) + '.\r\n');
  const r = await c.expect(554);
  assert.match(r.text, /Not today/);
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<fine@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: next\r\n\r\nok\r\n.\r\n');
  await c.expect(250);
  c.close();
});

test('message:headers adds a header that is stored; a rejection there stores nothing', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<fine@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: hooked\r\n\r\nbody\r\n.\r\n');
  const id = /queued as ([0-9a-f]+)/.exec((await c.expect(250)).text)?.[1];
  assert.ok(id);
  const meta = await m.master.store.getMeta(id);
  assert.match(meta?.headers ?? '', new RegExp(`^X-Hooked: yes ${id}\\r$`, 'm'));

  const before = await queueKeyCount(m.master.store);
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<fine@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: reject me\r\n\r\n' + 'z'.repeat(200_000) + '\r\n.\r\n');
  const r = await ask(c, 'NOOP');
  assert.equal(r.code, 550, r.text);
  assert.match(r.text, /Content refused/);
  await c.expect(250); // the NOOP
  assert.equal(await queueKeyCount(m.master.store), before);
  c.close();
});

test('smtp:connect refusing a client: it gets that reply instead of a greeting, others are served', async () => {
  const c = await SmtpTalk.connect(m.smtpPort, '127.0.0.1', '127.0.0.66');
  const r = await c.expect(554);
  assert.match(r.text, /Go away/);
  await c.waitClosed();
  (await open()).close();
});

test('smtp:data refusing while the client leaves mid-message: the server goes on serving', async () => {
  const c = await open();
  await c.send('MAIL FROM:<a@x.test>', 250);
  await c.send('RCPT TO:<leave-early@y.test>', 250);
  await c.send('DATA', 354);
  c.write('Subject: gone\r\n\r\nhalf');
  c.close();
  // the next session on the same server runs a full transaction
  const d = await open();
  await d.send('MAIL FROM:<a@x.test>', 250);
  await d.send('RCPT TO:<fine@y.test>', 250);
  await d.send('DATA', 354);
  d.write('Subject: next\r\n\r\nok\r\n.\r\n');
  await d.expect(250);
  d.close();
  assert.equal(dataRefusals, 1);
});
