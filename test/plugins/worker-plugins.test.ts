import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { loadConfig } from '../../lib/config/load.js';
import type { ConnectOptions } from '../../lib/plugins/hooks.js';
import { deliveryChanges, deliveryForHooks, hookFailureResults, loadSenderPlugins, notifyResults, prepareDelivery } from '../../lib/plugins/worker-plugins.js';
import { captureLog } from '../helpers/capture-log.js';
import { tempDir, testOverrides } from '../helpers/master.js';
import { userPlugin, writePlugin } from '../helpers/plugins.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

const SENDER = `
export function init(app) {
  app.addHook('sender:fetch', (delivery) => {
    if (delivery.envelope.to.includes('refuse@dest.test')) throw app.reject(550, 'Not to this one', '5.7.1');
    if (delivery.envelope.to.includes('crash@dest.test')) throw new Error('bug');
    delivery.envelope.from = 'bounces+' + delivery.id + '@src.test';
  });
  app.addHook('sender:headers', (delivery) => {
    delivery.headers.add('X-Zone', delivery.zone, Infinity);
    delivery.headers.remove('X-Internal');
  });
  app.addHook('sender:connect', (delivery, options) => {
    if (delivery.domain === 'dest.test') { options.host = '127.0.0.9'; options.port = 2626; options.localHostname = 'out.example.test'; }
  });
  app.addHook('smtp:connect', () => { throw new Error('never called in a sender'); });
}`;

const job = (to: string[]) => ({
  id: '0123456789abcdef012345',
  zone: 'default',
  domain: 'dest.test',
  from: 'a@src.test',
  rows: to.map((recipient, i) => ({ seq: i + 1, recipient })),
  headers: 'From: a@src.test\r\nX-Internal: secret\r\nSubject: hi\r\n\r\n',
  size: 100,
  messageId: '<m@src.test>',
  attempts: 0,
});

test('loadSenderPlugins loads "sender" plugins; the hooks change envelope.from, headers and the connection', async () => {
  const file = writePlugin(dir, 'sender.js', SENDER);
  const mainOnly = writePlugin(dir, 'main-only.js', 'export function init() { throw new Error("a main plugin must not start in a sender"); }');
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins: { s: userPlugin(file, {}, ['sender']), m: userPlugin(mainOnly, {}, ['main']) } }) });
  const log = captureLog();
  const plugins = await loadSenderPlugins(config, log.logger);
  assert.deepEqual(plugins.plugins.map((p) => p.name), ['s']);
  assert.equal(plugins.hooks.has('smtp:connect'), false);

  const delivery = deliveryForHooks(job(['r@dest.test']));
  await plugins.hooks.run('sender:fetch', delivery);
  await plugins.hooks.run('sender:headers', delivery);
  const changed = deliveryChanges(delivery);
  assert.equal(changed.from, 'bounces+0123456789abcdef012345@src.test');
  assert.equal(changed.headers, 'From: a@src.test\r\nSubject: hi\r\nX-Zone: default\r\n\r\n');
  assert.throws(() => (delivery.recipients as unknown as { seq: number }[]).push({ seq: 9 }), TypeError, 'the recipients are fixed');

  const options: ConnectOptions = { hostname: 'mx.dest.test', host: '127.0.0.1', port: 25, localHostname: 'sluice.test' };
  await plugins.hooks.run('sender:connect', delivery, options);
  assert.deepEqual(options, { hostname: 'mx.dest.test', host: '127.0.0.9', port: 2626, localHostname: 'out.example.test' });
  await plugins.stop();
});

test('a sender gate hook that rejects bounces the recipients with its reply; one that crashes defers them', async () => {
  const file = writePlugin(dir, 'sender2.js', SENDER);
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins: { s: userPlugin(file, {}, ['sender']) } }) });
  const plugins = await loadSenderPlugins(config, captureLog().logger);
  const refused = job(['refuse@dest.test', 'x@dest.test']);
  const err = await plugins.hooks.run('sender:fetch', deliveryForHooks(refused)).catch((e: unknown) => e);
  assert.deepEqual(hookFailureResults(refused.rows, err, 'sender:fetch'), [
    { seq: 1, outcome: 'bounced', response: '550 5.7.1 Not to this one (sender:fetch)', responseCode: 550, status: '5.7.1', category: 'plugin' },
    { seq: 2, outcome: 'bounced', response: '550 5.7.1 Not to this one (sender:fetch)', responseCode: 550, status: '5.7.1', category: 'plugin' },
  ]);
  const crashed = job(['crash@dest.test']);
  const err2 = await plugins.hooks.run('sender:fetch', deliveryForHooks(crashed)).catch((e: unknown) => e);
  const [r] = hookFailureResults(crashed.rows, err2, 'sender:fetch');
  assert.equal(r?.outcome, 'deferred');
  assert.equal(r?.responseCode, 451);
  await plugins.stop();
});

test('prepareDelivery runs sender:fetch and sender:headers; notifyResults tells sender:delivered and sender:responseError', async () => {
  const file = writePlugin(dir, 'sender3.js', `${SENDER.replace('export function init(app) {', 'export function init(app) {\n  const seen = (globalThis.__sluiceSender = []);\n  app.addHook("sender:delivered", (d, info) => { seen.push(["delivered", d.id, info.accepted, info.rejected, info.connection.hostname]); });\n  app.addHook("sender:responseError", (d, conn, err) => { seen.push(["error", d.id, err.results.map((r) => [r.recipient, r.outcome]), err.responseCode, conn && conn.hostname]); });')}`);
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins: { s: userPlugin(file, {}, ['sender']) } }) });
  const plugins = await loadSenderPlugins(config, captureLog().logger);
  const original = job(['ok@dest.test', 'full@dest.test']);
  const prepared = await prepareDelivery(plugins.hooks, original);
  assert.ok('job' in prepared && prepared.delivery);
  assert.equal(prepared.job.from, 'bounces+0123456789abcdef012345@src.test');
  assert.match(prepared.job.headers, /^X-Zone: default\r\n/m);
  assert.equal(original.from, 'a@src.test', 'the job itself is untouched');

  await notifyResults(plugins.hooks, prepared.delivery, [
    { seq: 1, outcome: 'delivered', response: '250 ok', mx: 'mx.dest.test', tls: true },
    { seq: 2, outcome: 'deferred', response: '452 4.2.2 mailbox full', responseCode: 452, mx: 'mx.dest.test' },
  ]);
  assert.deepEqual((globalThis as Record<string, unknown>).__sluiceSender, [
    ['delivered', original.id, ['ok@dest.test'], ['full@dest.test'], 'mx.dest.test'],
    ['error', original.id, [['full@dest.test', 'deferred']], 452, 'mx.dest.test'],
  ]);

  const refused = await prepareDelivery(plugins.hooks, job(['refuse@dest.test']));
  assert.ok('results' in refused);
  assert.equal(refused.results[0]?.outcome, 'bounced');
  await plugins.stop();

  const none = await loadSenderPlugins(loadConfig({ appDir: dir, env: {}, overrides: testOverrides() }).config, captureLog().logger);
  const untouched = job(['x@dest.test']);
  const plain = await prepareDelivery(none.hooks, untouched);
  assert.ok('job' in plain);
  assert.equal(plain.job, untouched, 'no sender plugin: the job as it is');
  assert.equal(plain.delivery, undefined);
});
