import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../lib/config/load.js';
import type { SmtpError } from '../../lib/errors/smtp-error.js';
import { PluginLoadError } from '../../lib/plugins/facade.js';
import { loadPlugins } from '../../lib/plugins/loader.js';
import { HookRunner } from '../../lib/plugins/runner.js';
import { captureLog } from '../helpers/capture-log.js';
import { startMaster, tempDir, testOverrides } from '../helpers/master.js';
import { userPlugin, writePlugin } from '../helpers/plugins.js';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
/** the environment for a child `sluice`: no SLUICE_ variables of the test runner */
const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
function appDir(): string {
  const d = tempDir('sluice-plugins-');
  dirs.push(d);
  return d;
}

/** Loads the plugins of `plugins` for one process, as the master would. */
async function load(dir: string, plugins: Record<string, unknown>, proc: 'main' | 'sender' = 'main') {
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ plugins }) });
  const log = captureLog();
  const hooks = new HookRunner(log.logger, config.hooks.timeout);
  const loaded = await loadPlugins({ config, process: proc, hooks, logger: log.logger });
  return { loaded, hooks, log };
}

async function loadError(dir: string, plugins: Record<string, unknown>): Promise<Error> {
  return load(dir, plugins).then(
    () => assert.fail('the plugins loaded'),
    (err: Error) => err,
  );
}

test('ESM, CommonJS (module.exports and exports.x), a .mjs file, a folder and compiled TypeScript all load, in config order', async () => {
  const dir = appDir();
  const order: string[] = [];
  (globalThis as Record<string, unknown>).__sluiceOrder = order;
  const esm = writePlugin(dir, 'esm.js', `export const title = 'ESM one'; export function init(app) { globalThis.__sluiceOrder.push('esm:' + app.title + ':' + app.config.color); app.addHook('smtp:connect', () => {}); }`);
  const cjs = writePlugin(dir, 'cjs.js', `module.exports = { title: 'CJS one', init(app) { globalThis.__sluiceOrder.push('cjs'); app.addHook('smtp:connect', () => {}); } };`);
  const cjs2 = writePlugin(dir, 'cjs2.cjs', `exports.init = async function (app) { globalThis.__sluiceOrder.push('cjs2:' + app.title); app.addHook('smtp:connect', () => {}); };`);
  const mjs = writePlugin(dir, 'def.mjs', `export default { init(app) { globalThis.__sluiceOrder.push('default'); app.addHook('smtp:connect', () => {}); } };`);
  writePlugin(dir, 'folder/index.js', `export function init(app) { globalThis.__sluiceOrder.push('folder'); app.addHook('smtp:connect', () => {}); }`);
  // what tsc makes of a TypeScript plugin compiled to CommonJS
  const ts = writePlugin(dir, 'compiled.cjs', `"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\nexports.title = void 0;\nexports.init = init;\nexports.title = 'compiled';\nfunction init(app) { globalThis.__sluiceOrder.push('ts'); app.addHook('smtp:connect', () => {}); }\n`);
  const { loaded, hooks } = await load(dir, {
    'z-first': userPlugin(esm, { color: 'blue' }),
    'a-second': userPlugin(cjs),
    'm-third': userPlugin(cjs2),
    mjs: userPlugin(mjs),
    folder: userPlugin('plugins/folder'),
    ts: userPlugin(ts),
  });
  assert.deepEqual(order, ['esm:ESM one:blue', 'cjs', 'cjs2:m-third', 'default', 'folder', 'ts']);
  assert.deepEqual(loaded.plugins.map((p) => p.name), ['z-first', 'a-second', 'm-third', 'mjs', 'folder', 'ts']);
  assert.equal(loaded.plugins[0]!.title, 'ESM one');
  assert.ok(hooks.has('smtp:connect'));
});

test('a plugin is loaded only in the processes it is enabled for; hooks of the other process are never called there', async () => {
  const dir = appDir();
  const both = writePlugin(dir, 'both.js', `export function init(app) { app.addHook('smtp:connect', () => {}); app.addHook('sender:fetch', () => {}); }`);
  const senderOnly = writePlugin(dir, 'sender.js', `export function init(app) { throw new Error('must not load in main'); }`);
  const plugins = { both: userPlugin(both, {}, ['main', 'sender']), s: userPlugin(senderOnly, {}, ['sender']), off: { enabled: false, path: 'plugins/nope.js' }, off2: { enabled: [], path: 'plugins/nope.js' } };
  const main = await load(dir, plugins, 'main');
  assert.deepEqual(main.loaded.plugins.map((p) => p.name), ['both']);
  assert.ok(main.hooks.has('smtp:connect'));
  assert.equal(main.hooks.has('sender:fetch'), false);
  const missing = await loadError(dir, { s: userPlugin('plugins/not-there.js', {}, ['sender']) });
  assert.match(missing.message, /plugin "s": cannot find .*not-there\.js/, 'the master checks that a sender plugin exists');
  const sender = await load(dir, { both: userPlugin(both, {}, 'sender' as never) }, 'sender');
  assert.ok(sender.hooks.has('sender:fetch'));
  assert.equal(sender.hooks.has('smtp:connect'), false);
});

test('load failures name the plugin: missing file, syntax error, no init, init throws, callback init, bad hook', async () => {
  const dir = appDir();
  const cases: [string, string | undefined, RegExp][] = [
    ['missing', undefined, /plugin "missing": cannot find .*nope\.js/],
    ['syntax', 'export function init(app) { this is not javascript }', /plugin "syntax": cannot load .*syntax\.js/],
    ['noinit', 'export const title = "x";', /plugin "noinit": .* exports no init\(app\) function/],
    ['throws', 'export function init() { throw new Error("no licence key"); }', /plugin "throws": init failed: no licence key/],
    ['callback', 'export function init(app, done) { done(); }', /plugin "callback": init\(app, done\) with a callback is not supported/],
    ['unknownhook', 'export function init(app) { app.addHook("smtp:rcpt", () => {}); }', /plugin "unknownhook": unknown hook "smtp:rcpt" \(known: smtp:connect, /],
  ];
  for (const [name, source, expected] of cases) {
    const file = source === undefined ? 'plugins/nope.js' : writePlugin(dir, `${name}.js`, source);
    const err = await loadError(dir, { [name]: userPlugin(file) });
    assert.ok(err instanceof PluginLoadError, `${name}: ${err}`);
    assert.match(err.message, expected);
  }
});

test('an init that never finishes stops the start after the hook time limit', async () => {
  const dir = appDir();
  const file = writePlugin(dir, 'hang.js', 'export function init() { return new Promise(() => {}); }');
  const { config } = loadConfig({ appDir: dir, env: {}, overrides: testOverrides({ hooks: { timeout: '200ms' }, plugins: { hang: userPlugin(file) } }) });
  const err = await loadPlugins({ config, process: 'main', hooks: new HookRunner(captureLog().logger, 200), logger: captureLog().logger }).catch((e: Error) => e);
  assert.match(String(err), /plugin "hang": init failed: init took longer than 200 ms/);
});

test('bad plugin tables are config errors naming the key; a user plugin without path says what to write', async () => {
  const dir = appDir();
  const err = await loadError(dir, {
    a: { enabled: 'always', path: 'plugins/a.js' },
    b: { enabled: ['main'] },
    'core/../x': { enabled: ['main'] },
    c: { enabled: ['main'], path: 7 },
  });
  const problems = (err as Error & { problems: string[] }).problems;
  assert.deepEqual(problems, [
    'plugins.a.enabled: expected "main", "sender", a list of them, or false; got "always"',
    'plugins.b: a user plugin needs path = "plugins/b.js" (only core/… plugins are found by name)',
    'plugins."core/../x": not a core plugin name',
    'plugins.c.path: expected a path to the plugin\'s file',
  ]);
  const unknownCore = await loadError(dir, { 'core/nonesuch': { enabled: ['main'] } });
  assert.match(unknownCore.message, /plugin "core\/nonesuch": no such core plugin \(core plugins: core\/delivery-counters, core\/headers, core\/http-auth, core\/http-bounce, core\/rcpt-mx, core\/rspamd\)/);
});

test('app.options checks a plugin\'s options with every problem named, and fills defaults', async () => {
  const dir = appDir();
  const file = writePlugin(dir, 'opts.js', `
    export function init(app) {
      const o = app.options((s) => ({ url: s.string(), timeout: s.default(s.duration(), 5000), tries: s.default(s.int({ min: 1 }), 3) }));
      globalThis.__sluiceOpts = o;
      app.addHook('smtp:connect', () => {});
    }`);
  await load(dir, { opts: userPlugin(file, { url: 'http://x.test', timeout: '2s' }) });
  assert.deepEqual((globalThis as Record<string, unknown>).__sluiceOpts, { url: 'http://x.test', timeout: 2000, tries: 3 });
  const err = await loadError(dir, { opts: userPlugin(file, { timeout: 'soon', tires: 2 }) });
  assert.match(err.message, /plugin "opts": bad options:/);
  assert.match(err.message, /plugins\.opts\.tires: unknown key/);
  assert.match(err.message, /plugins\.opts\.url: missing, expected a string/);
  assert.match(err.message, /plugins\.opts\.timeout: expected a duration/);
});

test('the facade: config is frozen, reject() makes a reply, registering after init is refused, onStop runs at stop', async () => {
  const dir = appDir();
  const file = writePlugin(dir, 'facade.js', `
    export function init(app) {
      const seen = (globalThis.__sluiceFacade = { app, stopped: 0 });
      try { app.config.extra.push(1); } catch (e) { seen.frozen = e instanceof TypeError; }
      const r = app.reject(550, 'No thanks', '5.7.1');
      seen.reject = [r.responseCode, r.enhancedStatus, r.message];
      try { app.reject(250, 'ok'); } catch (e) { seen.badCode = e.message; }
      app.addHook('smtp:connect', () => {});
      app.onStop(() => { seen.stopped++; });
      seen.global = app.globalConfig.hostname;
      seen.process = app.process;
    }`);
  const { loaded } = await load(dir, { facade: userPlugin(file, { extra: [] }) });
  const seen = (globalThis as Record<string, unknown>).__sluiceFacade as Record<string, unknown> & { app: { addHook: (n: string, h: () => void) => void }; stopped: number };
  assert.equal(seen.frozen, true);
  assert.deepEqual(seen.reject, [550, '5.7.1', 'No thanks']);
  assert.match(String(seen.badCode), /must be 4xx or 5xx/);
  assert.equal(seen.global, 'sluice.test');
  assert.equal(seen.process, 'main');
  assert.throws(() => seen.app.addHook('smtp:connect', () => undefined), /only possible while init\(\) runs/);
  await loaded.stop();
  assert.equal(seen.stopped, 1);
});

test('a plugin that fails to load stops the master\'s start before the queue is opened', async () => {
  const dir = appDir();
  const file = writePlugin(dir, 'broken.js', 'export function init(app) { app.addHook("message:stored", () => {}); }');
  const err = await startMaster({ plugins: { broken: userPlugin(file) } }, dir).catch((e: Error) => e);
  assert.ok(err instanceof PluginLoadError);
  assert.match(err.message, /^plugin "broken": unknown hook "message:stored"/);
  assert.equal(existsSync(path.join(dir, 'data', 'queue')), false);
});

test('sluice run exits non-zero naming the plugin; sluice check-config loads plugins and reports the same', () => {
  const dir = appDir();
  writePlugin(dir, 'broken.js', 'export function init() { throw new Error("cannot reach the licence server"); }');
  writePlugin(dir, 'good.js', 'export function init(app) { app.addHook("sender:headers", () => {}); }');
  const base = `hostname = "sluice.test"\n[log]\nlevel = "silent"\n[smtp]\nport = 0\n[api]\nport = 0\n[channel]\nport = 0\n[queue]\nminFreeSpace = 0\n[zones.default]\nprocesses = 0\n`;
  writeFileSync(path.join(dir, 'config.toml'), `${base}[plugins."good"]\nenabled = "sender"\npath = "plugins/good.js"\n[plugins."broken"]\nenabled = ["main"]\npath = "plugins/broken.js"\n`);
  const run = spawnSync(process.execPath, [BIN, 'run', '-d', dir], { encoding: 'utf8', timeout: 20_000, env: childEnv });
  assert.equal(run.status, 1, run.stderr);
  assert.match(run.stderr, /sluice: plugin "broken": init failed: cannot reach the licence server/);
  const check = spawnSync(process.execPath, [BIN, 'check-config', '-d', dir], { encoding: 'utf8', timeout: 20_000, env: childEnv });
  assert.equal(check.status, 1);
  assert.match(check.stderr, /plugin error: plugin "broken": init failed: cannot reach the licence server/);
  writeFileSync(path.join(dir, 'config.toml'), `${base}[plugins."good"]\nenabled = "sender"\npath = "plugins/good.js"\n`);
  const ok = spawnSync(process.execPath, [BIN, 'check-config', '-d', dir], { encoding: 'utf8', timeout: 20_000, env: childEnv });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /config ok/);
  assert.match(ok.stdout, /plugins ok: good \(sender\)/);
});

test('a TypeScript plugin that imports its types from "sluice/plugin" compiles and loads', async () => {
  const file = fileURLToPath(new URL('./typed-plugin.js', import.meta.url));
  const { loaded, hooks } = await load(appDir(), { typed: userPlugin(file, { domain: 'blocked.test' }) });
  assert.equal(loaded.plugins[0]?.title, 'Typed plugin');
  const err = await hooks.run('smtp:rcpt_to', { address: 'x@blocked.test', args: false } as never, {} as never).catch((e: Error) => e);
  assert.equal((err as SmtpError).replyText, '5.7.1 No mail to blocked.test');
  assert.equal(hooks.has('sender:headers'), false, 'its sender hook is not called in main');
});

test('a plugin route that clashes with another stops the start, naming the plugin', async () => {
  const dir = appDir();
  const file = writePlugin(dir, 'dup.js', `export function init(app) { app.addRoute({ method: 'GET', url: '/health', handler: async () => 'mine' }); }`);
  const err = await startMaster({ plugins: { dup: userPlugin(file) } }, dir).catch((e: Error) => e);
  assert.match(String(err), /plugin "dup": cannot add the route GET \/health: Method 'GET' already declared/);
});
