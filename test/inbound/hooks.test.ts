/**
 * Plugins at the receiver (the inbound:* hooks of lib/plugins/hooks.ts): a gate refuses a
 * connection, a sender or a recipient with its own reply; inbound:message is told of every
 * stored and parsed message; a plugin that throws a plain error gives 451, never a crash.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startReceiver, type TestReceiver } from '../helpers/inbound.js';
import { tempDir } from '../helpers/master.js';
import { userPlugin, waitFor, writePlugin } from '../helpers/plugins.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const PLUGIN = `
export const title = 'Inbound guard';
export function init(app) {
  const seen = (globalThis.__inboundSeen = []);
  app.addHook('inbound:connect', (session) => {
    if (session.remoteAddress === '127.0.0.66') throw app.reject(554, 'Not from there', '5.7.1');
  });
  app.addHook('inbound:mail_from', (address) => {
    if (address.address.endsWith('@nope.test')) throw app.reject(550, 'Sender refused by the guard', '5.7.1');
  });
  app.addHook('inbound:rcpt_to', (address) => {
    if (address.address.startsWith('closed@')) throw app.reject(550, 'This inbox is closed', '5.2.1');
    if (address.address.startsWith('buggy@')) throw new Error('a bug in the plugin');
  });
  app.addHook('inbound:message', (message) => { seen.push(message); });
}
`;

let r: TestReceiver;
before(async () => {
  const dir = tempDir();
  const file = writePlugin(dir, 'guard.mjs', PLUGIN);
  r = await startReceiver({}, { plugins: { guard: userPlugin(file) } }, dir);
});
after(() => r.stop());

test('inbound gates refuse with the plugin\'s reply; a plugin bug is a 451', async () => {
  const banned = await SmtpTalk.connect(r.port, '127.0.0.1', '127.0.0.66');
  assert.match((await banned.next())!.text, /^554 5\.7\.1 Not from there/);
  await banned.waitClosed();
  const c = await r.session();
  assert.match((await c.send('MAIL FROM:<x@nope.test>', 550)).text, /^550 5\.7\.1 Sender refused by the guard/);
  await c.send('MAIL FROM:<x@fine.test>', 250);
  assert.match((await c.send('RCPT TO:<closed@inbox.test>', 550)).text, /^550 5\.2\.1 This inbox is closed/);
  assert.match((await c.send('RCPT TO:<buggy@inbox.test>', 451)).text, /^451 4\.3\.0 /);
  await c.send('RCPT TO:<open@inbox.test>', 250);
  c.close();
});

test('inbound:message is told of each stored message, after its parse', async () => {
  const id = await r.send({ from: 'app@src.test', to: ['hooked@inbox.test', 'also@inbox.test'], subject: 'Hooked' });
  const seen = () => (globalThis as unknown as { __inboundSeen: { id: string; subject: string; inboxes: string[]; from: string }[] }).__inboundSeen;
  await waitFor(() => seen().some((m) => m.id === id), 5000, 'the notification');
  const m = seen().find((x) => x.id === id)!;
  assert.equal(m.subject, 'Hooked');
  assert.equal(m.from, 'app@src.test');
  assert.deepEqual([...m.inboxes].sort(), ['also@inbox.test', 'hooked@inbox.test']);
});
