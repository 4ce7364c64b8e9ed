/**
 * Every Sluice process runs with NODE_FLAGS and PROCESS_ENV (lib/app/node-flags.ts): the `sluice`
 * script's first line, `npm start` and the workers the master forks all say the same, and a
 * forked worker really has them on its command line and in its environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS, PROCESS_ENV, withNodeFlags, withProcessEnv } from '../../lib/app/node-flags.js';
import { startMaster } from '../helpers/master.js';
import { waitFor } from '../helpers/delivery-kit.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const envWords = Object.entries(PROCESS_ENV)
  .map(([name, value]) => `${name}=${value}`)
  .join(' ');

test('the sluice script, npm start and node-flags.ts name the same V8 flags and environment', () => {
  const shebang = readFileSync(path.join(root, 'bin', 'sluice.ts'), 'utf8').split('\n')[0];
  assert.equal(shebang, `#!/usr/bin/env -S ${envWords} node ${NODE_FLAGS.join(' ')}`);
  const start = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
  assert.ok(start.endsWith(`&& ${envWords} node ${NODE_FLAGS.join(' ')} dist/bin/sluice.js run`), start);
});

test('withNodeFlags and withProcessEnv add what is missing and keep what the operator gave', () => {
  assert.deepEqual(withNodeFlags([]), [...NODE_FLAGS]);
  assert.deepEqual(withNodeFlags(['--max-semi-space-size=8', '--inspect']), ['--max-semi-space-size=8', '--inspect', ...NODE_FLAGS.filter((f) => !f.startsWith('--max-semi-space-size='))]);
  assert.deepEqual(withProcessEnv({ PATH: '/bin' }), { PATH: '/bin', ...PROCESS_ENV });
  const own = Object.fromEntries(Object.keys(PROCESS_ENV).map((name) => [name, '4']));
  assert.deepEqual(withProcessEnv(own), own);
});

test('a forked worker runs with NODE_FLAGS and PROCESS_ENV', async () => {
  const m = await startMaster({ zones: { default: { processes: 1 } } });
  try {
    await waitFor(() => m.master.supervisor!.pids().length === 1, 5000, 'a worker');
    const pid = m.master.supervisor!.pids()[0]!.pid;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    for (const flag of NODE_FLAGS) assert.ok(argv.includes(flag), `${flag} in ${argv.join(' ')}`);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    for (const word of envWords.split(' ')) assert.ok(environ.includes(word), `${word} in the worker's environment`);
  } finally {
    await m.stop();
  }
});
