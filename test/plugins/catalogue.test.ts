import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { APP_TEMPLATE_DIR } from '../../lib/app/create.js';
import { HOOKS, HOOK_NAMES } from '../../lib/plugins/hooks.js';
import { coreNames } from '../../lib/plugins/loader.js';

const README = readFileSync(new URL('../../../plugins/README.md', import.meta.url), 'utf8');

test('plugins/README.md has a row for every hook, with its process and kind, and no row for a hook that does not exist', () => {
  const rows = [...README.matchAll(/^\| `([a-z]+:[A-Za-z_]+)` \| (\w+) \| (\w+) \|/gm)].map((m) => [m[1], m[2], m[3]]);
  assert.deepEqual(rows.map((r) => r[0]).sort(), [...HOOK_NAMES].sort());
  for (const [name, proc, kind] of rows) {
    const spec = HOOKS[name as keyof typeof HOOKS];
    assert.deepEqual([proc, kind], [spec.process, spec.kind], name);
  }
});

test('plugins/README.md documents every core plugin', () => {
  const names = coreNames();
  assert.ok(names.length >= 6, names.join(', '));
  for (const name of names) assert.match(README, new RegExp(`^### ${name}$`, 'm'), name);
});

test("the README's example plugin is the one `sluice create` writes", () => {
  const example = readFileSync(path.join(APP_TEMPLATE_DIR, 'plugins', 'my-plugin.mjs'), 'utf8');
  const code = example.slice(example.indexOf('export const title'));
  assert.ok(README.includes('```js\n' + code + '```'), 'the example in plugins/README.md differs from setup/app-template/plugins/my-plugin.mjs');
});
