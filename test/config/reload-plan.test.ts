/**
 * The reload plan (issue 12 item 3): every changed key sorted into applied or needs-a-restart,
 * the effective config takes only the applied keys, and no value is ever in the plan.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../lib/config/load.js';
import { changedPaths, planReload } from '../../lib/config/reload-plan.js';
import type { Config } from '../../lib/config/schema.js';

// one app dir for all: relative paths resolve against it, and a reload re-reads the same dir
const dir = mkdtempSync(path.join(tmpdir(), 'sluice-reload-plan-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function load(toml: string): Config {
  writeFileSync(path.join(dir, 'config.toml'), toml);
  return loadConfig({ appDir: dir, env: {} }).config;
}

const BASE = 'hostname = "sluice.test"\n';

const cases: { name: string; after: string; applied: string[]; restart: string[]; appliers: string[] }[] = [
  { name: 'nothing changed', after: '', applied: [], restart: [], appliers: [] },
  { name: 'log level', after: '[log]\nlevel = "debug"\n', applied: ['log.level'], restart: [], appliers: ['master', 'workers'] },
  {
    name: 'a static route',
    after: '[routes."example.test"]\nhost = "127.0.0.1"\nport = 2600\n',
    applied: ['routes."example.test"'],
    restart: [],
    appliers: ['workers'],
  },
  { name: 'a TLS policy', after: '[tlsPolicies]\n"example.test" = "encrypt"\n', applied: ['tlsPolicies."example.test"'], restart: [], appliers: ['workers'] },
  {
    name: 'zone limits and throttling',
    after: '[zones.default]\nconnections = 9\nthrottling = "10 messages/minute"\ndomainRatePerMinute = 30\n',
    applied: ['zones.default.connections', 'zones.default.domainRatePerMinute', 'zones.default.throttling'],
    restart: [],
    appliers: ['master', 'workers'],
  },
  { name: 'a delivery timeout', after: '[delivery]\nconnectTimeout = "7s"\n', applied: ['delivery.connectTimeout'], restart: [], appliers: ['workers'] },
  {
    name: 'an attempt timeout beyond the running lease timeout waits for the restart that changes both',
    after: '[delivery]\nattemptTimeout = "20m"\n[queue]\nleaseTimeout = "30m"\n',
    applied: [],
    restart: ['delivery.attemptTimeout', 'queue.leaseTimeout'],
    appliers: [],
  },
  { name: 'a listener port', after: '[smtp]\nport = 2599\n', applied: [], restart: ['smtp.port'], appliers: [] },
  { name: 'the queue path', after: '[queue]\npath = "elsewhere"\n', applied: [], restart: ['queue.path'], appliers: [] },
  { name: 'the data channel', after: '[channel]\nport = 8099\n', applied: [], restart: ['channel.port'], appliers: [] },
  { name: 'the inbox store', after: '[inbound]\npath = "inbox2"\n', applied: [], restart: ['inbound.path'], appliers: [] },
  { name: 'worker count', after: '[zones.default]\nprocesses = 3\n', applied: [], restart: ['zones.default.processes'], appliers: [] },
  { name: 'zone selection', after: '[zones.default]\nsenderDomains = ["a.test"]\n', applied: [], restart: ['zones.default.senderDomains'], appliers: [] },
  { name: 'a new zone', after: '[zones.bulk]\nconnections = 2\n', applied: [], restart: ['zones.bulk'], appliers: [] },
  { name: 'a secret is named, not shown', after: '[api]\ntoken = "s3cret-token-value"\n', applied: [], restart: ['api.token'], appliers: [] },
  {
    name: 'live and restart keys together',
    after: '[log]\nlevel = "warn"\n[smtp]\nport = 2599\n',
    applied: ['log.level'],
    restart: ['smtp.port'],
    appliers: ['master', 'workers'],
  },
];

for (const c of cases) {
  test(`reload plan: ${c.name}`, () => {
    const before = load(BASE);
    const after = load(BASE + c.after);
    const plan = planReload(before, after);
    assert.deepEqual(plan.applied, c.applied);
    assert.deepEqual(plan.restart, c.restart);
    assert.deepEqual(plan.changed, [...c.applied, ...c.restart].sort());
    assert.deepEqual([...plan.appliers].sort(), c.appliers);
    assert.ok(!JSON.stringify({ ...plan, effective: undefined, appliers: [...plan.appliers] }).includes('s3cret'), 'no value in the plan');
    // the effective config: applied keys from the new one, every restart key as it runs
    assert.deepEqual(changedPaths(plan.effective, after).sort(), c.restart);
    assert.deepEqual(changedPaths(before, plan.effective).sort(), c.applied);
    assert.ok(Object.isFrozen(plan.effective) && Object.isFrozen(plan.effective.zones), 'frozen like a loaded config');
  });
}

test('reload plan: a restart key still pending is reported again by the next reload', () => {
  const before = load(BASE);
  const after = load(BASE + '[smtp]\nport = 2599\n[log]\nlevel = "debug"\n');
  const first = planReload(before, after);
  const second = planReload(first.effective, after);
  assert.deepEqual(second.applied, []);
  assert.deepEqual(second.restart, ['smtp.port']);
});

test('changed paths: tables key by key, lists whole, a key on one side only', () => {
  assert.deepEqual(changedPaths({ a: { b: 1, c: [1, 2] } }, { a: { b: 1, c: [1, 3] } }), ['a.c']);
  assert.deepEqual(changedPaths({ a: { b: 1 } }, { a: { b: 1, d: { e: 2 } } }), ['a.d']);
  assert.deepEqual(changedPaths({ a: 1 }, {}), ['a']);
  assert.deepEqual(changedPaths({ r: {} }, { r: { 'x.test': 1 } }), ['r."x.test"']);
});
