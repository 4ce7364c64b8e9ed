/**
 * Secrets in the config stay where they are needed. The test walks the config schema for the
 * keys marked secret (and checks that every key named like a secret is marked), gives each a
 * value of its own, and looks for those values where they must not be:
 * - `sluice check-config --print` (also plugin options named like secrets, and a password in a URL);
 * - the config a delivery worker is given at fork (read back by a sender plugin in the worker):
 *   no API token, no user hashes, no webhook secret, no options of main-only plugins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'smol-toml';
import { ConfigError, loadConfig } from '../../lib/config/load.js';
import { configSchema } from '../../lib/config/schema.js';
import type { Spec } from '../../lib/config/spec.js';
import { runCli } from '../cli/sluice-cli.js';
import { startMaster } from '../helpers/master.js';
import { waitFor, writePlugin } from '../helpers/plugins.js';

/** Key paths of the schema marked secret; a map's entries are "NAME". */
function secretPaths(spec: Spec, at = ''): string[] {
  const here = (spec as { secret?: boolean }).secret ? [at] : [];
  if (spec.kind === 'object') return [...here, ...Object.entries(spec.fields).flatMap(([k, s]) => secretPaths(s, at ? `${at}.${k}` : k))];
  if (spec.kind === 'map' || spec.kind === 'list') return [...here, ...secretPaths(spec.of, `${at}.NAME`)];
  return here;
}

/** Every key path of the schema, with its spec. */
function allPaths(spec: Spec, at = ''): [string, Spec][] {
  const here: [string, Spec][] = at ? [[at, spec]] : [];
  if (spec.kind === 'object') return [...here, ...Object.entries(spec.fields).flatMap(([k, s]) => allPaths(s, at ? `${at}.${k}` : k))];
  if (spec.kind === 'map' || spec.kind === 'list') return [...here, ...allPaths(spec.of, `${at}.NAME`)];
  return here;
}

const SECRET_NAME = /(secret|password|passwd|token|credential|users)$/i;

test('the schema marks the secrets, and every key named like one', () => {
  const marked = secretPaths(configSchema as Spec);
  for (const known of ['api.token', 'smtp.users.NAME', 'events.secret']) assert.ok(marked.includes(known), `${known} is marked secret (marked: ${marked.join(', ') || 'none'})`);
  const named = allPaths(configSchema as Spec).filter(([p]) => SECRET_NAME.test(p.replace(/\.NAME$/, '')));
  for (const [p] of named) {
    const covered = marked.some((m) => p === m || p.startsWith(`${m}.`) || `${p}.NAME` === m);
    assert.ok(covered, `${p} is named like a secret but not marked`);
  }
});

/** A config with a value of its own in every secret: [toml table, the values]. */
function configWithSecrets(): { config: Record<string, unknown>; values: string[] } {
  const values = {
    token: 'TOKEN-a1b2c3',
    hash: 'scrypt$16384$8$1$SALT-d4e5f6$HASH-g7h8i9',
    events: 'EVENTS-SECRET-j1k2',
    urlPassword: 'URLPASS-l3m4',
    bounce: 'BOUNCE-SECRET-n5o6',
    pluginToken: 'PLUGIN-TOKEN-p7q8',
  };
  const config = {
    api: { token: values.token },
    smtp: { users: { alice: values.hash } },
    events: { url: `https://hook:${values.urlPassword}@hooks.example.test/events`, secret: values.events },
    plugins: {
      'core/http-bounce': { enabled: ['main'], url: 'https://hooks.example.test/bounces', secret: values.bounce },
      'my-check': { enabled: false, path: 'plugins/nothing.mjs', apiToken: values.pluginToken },
    },
  };
  return { config, values: Object.values(values) };
}

test('check-config --print hides every secret', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-secrets-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { config, values } = configWithSecrets();
  writeFileSync(path.join(dir, 'config.toml'), stringify(config));
  const res = await runCli(['check-config', '-d', dir, '--print']);
  assert.equal(res.code, 0, res.stderr);
  for (const v of values) assert.ok(!res.stdout.includes(v.split('$').pop()!), `${v} is printed`);
  const printed = JSON.parse(res.stdout.slice(res.stdout.indexOf('{'))) as {
    api: { token: string };
    smtp: { users: Record<string, string> };
    events: { url: string; secret: string };
    plugins: Record<string, Record<string, unknown>>;
  };
  assert.equal(printed.api.token, '(set)');
  assert.deepEqual(printed.smtp.users, { alice: '(set)' }, 'user names stay, hashes go');
  assert.equal(printed.events.secret, '(set)');
  assert.equal(printed.events.url, 'https://hook:(set)@hooks.example.test/events');
  assert.equal(printed.plugins['core/http-bounce']!.secret, '(set)');
  assert.equal(printed.plugins['core/http-bounce']!.url, 'https://hooks.example.test/bounces', 'what is not secret shows');
  assert.equal(printed.plugins['my-check']!.apiToken, '(set)');
});

test('a delivery worker gets no API token, user hashes, webhook secrets or main-only plugin options', async () => {
  // startMaster's stop() removes the dir
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-secrets-'));
  const dump = path.join(dir, 'worker-config.json');
  const file = writePlugin(
    dir,
    'dump.mjs',
    `import { writeFileSync } from 'node:fs';
export const title = 'dump the config a worker sees';
export function init(app) {
  writeFileSync(app.config.file, JSON.stringify(app.globalConfig));
  app.addHook('sender:connect', () => undefined);
}
`,
  );
  const { config, values } = configWithSecrets();
  const plugins = { ...(config.plugins as Record<string, unknown>), dump: { enabled: ['sender'], path: file, file: dump } };
  const m = await startMaster({ ...config, plugins, zones: { default: { processes: 1 } } }, dir);
  let seen = '';
  try {
    await waitFor(() => {
      try {
        seen = readFileSync(dump, 'utf8');
        return seen.length > 0;
      } catch {
        return false;
      }
    }, 15_000, 'the worker wrote its config');
  } finally {
    await m.stop();
  }
  for (const v of values) assert.ok(!seen.includes(v.split('$').pop()!), `the worker got ${v}`);
  const worker = JSON.parse(seen) as { plugins: Record<string, unknown>; zones: Record<string, unknown>; events: { url?: string } };
  assert.deepEqual(Object.keys(worker.plugins), ['dump'], 'only the plugins a worker runs');
  assert.ok(worker.zones.default, 'what a worker needs is there');
});

test('a config error at a secret key does not show the wrong value (it may be the secret itself)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-secret-error-'));
  try {
    // a plain password where its hash belongs, and a token of the wrong type
    writeFileSync(path.join(dir, 'config.toml'), '[smtp.users]\napp1 = "hunter2-plain"\n[api]\ntoken = 918273645\n');
    const err = (() => {
      try {
        loadConfig({ appDir: dir, env: {} });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    assert.ok(err instanceof ConfigError, 'the config is refused');
    const text = err.problems.join('\n');
    assert.match(text, /smtp\.users\.app1/);
    assert.match(text, /api\.token/);
    assert.ok(!text.includes('hunter2') && !text.includes('918273645'), text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
