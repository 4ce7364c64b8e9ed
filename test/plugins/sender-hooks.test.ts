/**
 * The sender:* hooks run in the delivery workers, on real deliveries: a plugin file in the app
 * dir enabled for "sender" sees each delivery, may change its headers, and may send the
 * connection elsewhere (sender:connect); a "main" plugin's message:headers change reaches the
 * destination too.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { startMaster, tempDir, type TestMaster } from '../helpers/master.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const PLUGIN = `
export const title = 'redirect';
export function init(app) {
  const to = app.config.redirectPort;
  app.addHook('sender:headers', async (delivery) => {
    delivery.headers.add('X-Sender-Hook', 'seen by ' + delivery.id, Infinity);
  });
  app.addHook('sender:connect', async (delivery, options) => {
    if (delivery.domain === 'moved.test') options.port = to;
  });
}
`;

const MAIN_PLUGIN = `
export const title = 'tagger';
export function init(app) {
  app.addHook('message:headers', async (envelope, info) => {
    info.headers.add('X-Main-Hook', 'tagged', Infinity);
  });
}
`;

test('sender:connect redirects a delivery to another server; sender:headers and message:headers changes arrive', async () => {
  const usual: FakeMx = await startFakeMx({ tls: false });
  const other: FakeMx = await startFakeMx({ tls: false });
  cleanup.push(() => usual.stop(), () => other.stop());
  const dir = tempDir();
  mkdirSync(path.join(dir, 'plugins'));
  writeFileSync(path.join(dir, 'plugins', 'redirect.mjs'), PLUGIN);
  writeFileSync(path.join(dir, 'plugins', 'tagger.mjs'), MAIN_PLUGIN);
  const m: TestMaster = await startMaster(
    {
      zones: { default: { processes: 1, connections: 2, route: usual.route } },
      plugins: {
        redirect: { enabled: ['sender'], path: 'plugins/redirect.mjs', redirectPort: other.port },
        tagger: { enabled: ['main'], path: 'plugins/tagger.mjs' },
      },
    },
    dir,
  );
  cleanup.push(() => m.stop());
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: m.smtpPort, ignoreTLS: true });
  await t.sendMail({ from: 'a@src.test', to: 'x@stays.test', subject: 'stays', text: 'one' });
  await t.sendMail({ from: 'a@src.test', to: 'y@moved.test', subject: 'moved', text: 'two' });
  await usual.waitFor(1, 15_000);
  await other.waitFor(1, 15_000);
  assert.deepEqual(usual.messages.map((x) => x.to), [['x@stays.test']]);
  assert.deepEqual(other.messages.map((x) => x.to), [['y@moved.test']], 'the hook sent moved.test to the other server');
  for (const msg of [...usual.messages, ...other.messages]) {
    const text = msg.data!.toString('latin1');
    assert.match(text, /^X-Sender-Hook: seen by [0-9a-f]{22}\r\n/m, 'sender:headers change is on the wire');
    assert.match(text, /^X-Main-Hook: tagged\r\n/m, 'message:headers change is on the wire');
  }
});
