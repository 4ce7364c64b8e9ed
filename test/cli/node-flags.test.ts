/**
 * Every Sluice process runs with NODE_FLAGS (lib/app/node-flags.ts): the `sluice` script's first
 * line, `npm start` and the workers the master forks all say the same, and a forked worker really
 * has them on its command line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, withNodeFlags } from '../../lib/app/node-flags.js';
import { startMaster } from '../helpers/master.js';
import { waitFor } from '../helpers/delivery-kit.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

test('the sluice script, npm start and NODE_FLAGS name the same V8 flags', () => {
  const shebang = readFileSync(path.join(root, 'bin', 'sluice.ts'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
  const start = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  assert.match(start, new RegExp(`node ${NODE_FLAGS.join(' ')} dist/bin/sluice\\.js run`));
});

test('withNodeFlags adds what is missing and keeps a flag the operator gave', () => {
  assert.deepEqual(withNodeFlags([]), [...NODE_FLAGS]);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=8', '--inspect']), ['--max-semi-space-size=8', '--inspect']);
});

test('a forked worker runs with NODE_FLAGS', async () => {
  const m = await startMaster({ zones: { default: { processes: 1 } } });
  try {
    await waitFor(() => m.master.supervisor!.pids().length === 1, 5000, 'a worker');
    const pid = m.master.supervisor!.pids()[0]!.pid;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
  } finally {
    await m.stop();
  }
});
