/**
 * setup/sluice.service: the hardening the docs promise is in the unit, and systemd itself
 * accepts the file (`systemd-analyze verify`, when this machine has it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { STOP_DEADLINE_MS } from '../../lib/app/run.js';

const UNIT_FILE = fileURLToPath(new URL('../../../setup/sluice.service', import.meta.url));
const unitText = readFileSync(UNIT_FILE, 'utf8');

/** section → key → values (a key may repeat). Comments and blank lines are skipped. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `stray line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

const service = parseUnit(unitText).get('Service')!;
const one = (key: string) => {
  const values = service.get(key);
  assert.ok(values, `[Service] has no ${key}=`);
  return values[values.length - 1]!;
};

test('the unit runs sluice as its own user from /var/lib/sluice', () => {
  assert.equal(one('User'), 'sluice');
  assert.equal(one('Group'), 'sluice');
  assert.equal(one('WorkingDirectory'), '/var/lib/sluice');
  assert.match(one('ExecStart'), /^\/\S+\/sluice run -d \/var\/lib\/sluice$/);
  // SIGHUP is Sluice's reload; to the main PID only, the workers are replaced by the master
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('Restart'), 'on-failure');
  assert.ok(Number(one('LimitNOFILE')) >= 65536);
});

test('the unit is hardened as promised', () => {
  const expected: Record<string, string> = {
    AmbientCapabilities: 'CAP_NET_BIND_SERVICE',
    CapabilityBoundingSet: 'CAP_NET_BIND_SERVICE',
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ReadWritePaths: '/var/lib/sluice/data',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectKernelLogs: 'yes',
    ProtectControlGroups: 'yes',
    RestrictAddressFamilies: 'AF_INET AF_INET6 AF_UNIX',
    SystemCallFilter: '@system-service',
  };
  for (const [key, value] of Object.entries(expected)) assert.equal(one(key), value, key);
  assert.equal(service.get('ReadWritePaths')!.length, 1, 'only the data dir is writable');
  assert.equal(service.get('MemoryDenyWriteExecute'), undefined, "MemoryDenyWriteExecute breaks V8's JIT");
  assert.match(unitText, /#.*MemoryDenyWriteExecute=.*\n#.*JIT/, 'the unit says why it is left off');
});

test("systemd waits longer than Sluice's own clean-stop deadline before it kills", () => {
  const seconds = Number(one('TimeoutStopSec'));
  assert.ok(seconds * 1000 > STOP_DEADLINE_MS, `TimeoutStopSec=${seconds} must exceed ${STOP_DEADLINE_MS / 1000} s`);
  assert.equal(one('KillSignal'), 'SIGTERM');
});

test('systemd-analyze verify accepts the unit', (t) => {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    t.skip('systemd-analyze is not installed');
    return;
  }
  // verify checks that ExecStart's program exists: point it at a stand-in
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-unit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stub = path.join(dir, 'sluice');
  writeFileSync(stub, '#!/bin/sh\nexit 0\n');
  chmodSync(stub, 0o755);
  const unit = path.join(dir, 'sluice.service');
  writeFileSync(unit, unitText.replace(/\/usr\/local\/bin\/sluice/g, stub));
  const res = spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', cwd: dir, timeout: 30_000 });
  assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`);
  assert.doesNotMatch(res.stderr, /sluice\.service/, res.stderr);
});
