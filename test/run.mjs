#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner and fails when
// no test ran. Node 20's --test takes no globs and finds no .ts, hence this script.
// FAULT_SLOW=1 adds the slow fault-injection set (test/fault/*.slow.test.ts).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testDir = path.join(root, 'dist', 'test');
const slow = process.env.FAULT_SLOW === '1';
const only = process.argv.slice(2);

function find(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return find(p);
    if (!e.name.endsWith('.test.js')) return [];
    if (e.name.endsWith('.slow.test.js') && !slow) return [];
    return [p];
  });
}

let files = find(testDir).sort();
if (only.length) files = files.filter((f) => only.some((o) => f.includes(o)));
if (!files.length) {
  console.error('test/run.mjs: no test files found under dist/test');
  process.exit(1);
}

// One directory for the whole run: the TAP file, and TMPDIR of every test process, so whatever a
// test (or a child it spawned, or a SIGKILLed master) leaves in its temp dirs goes with it.
const tapDir = mkdtempSync(path.join(tmpdir(), 'sluice-tests-'));
const tapFile = path.join(tapDir, 'out.tap');
const testTmp = path.join(tapDir, 'tmp');
// open to every user, sticky, like /tmp: some tests run a child as nobody
chmodSync(tapDir, 0o755);
mkdirSync(testTmp);
chmodSync(testTmp, 0o1777);
const args = [
  '--test',
  '--test-concurrency=2',
  '--test-reporter=spec',
  '--test-reporter-destination=stdout',
  '--test-reporter=tap',
  `--test-reporter-destination=${tapFile}`,
  ...files,
];
const res = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: { ...process.env, TMPDIR: testTmp } });
let tests = 0;
try {
  const m = /^# tests (\d+)/m.exec(readFileSync(tapFile, 'utf8'));
  tests = m ? Number(m[1]) : 0;
} catch {
  tests = 0;
}
rmSync(tapDir, { recursive: true, force: true });
if (res.status === 0 && tests === 0) {
  console.error('test/run.mjs: no test ran');
  process.exit(1);
}
process.exit(res.status ?? 1);
