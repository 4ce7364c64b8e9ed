/**
 * README.md is where users learn Sluice; these tests keep its catalogues true: every log event
 * and hook name is documented, the config table's defaults are the real ones, and the two
 * commands a newcomer types are there verbatim.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { DEFAULT_CONFIG_FILE } from '../../lib/config/load.js';
import { configSchema } from '../../lib/config/schema.js';
import type { Spec } from '../../lib/config/spec.js';
import { HTTP_ERRORS } from '../../lib/api/errors.js';
import { LOG_EVENTS } from '../../lib/log/events.js';
import { HOOK_NAMES } from '../../lib/plugins/hooks.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The first cells of the rows of every Markdown table, as written. */
const firstCells = readme.split('\n').flatMap((l) => (/^\|\s*`/.test(l) ? [l.split('|')[1]!.trim()] : []));
const documented = (code: string) => firstCells.includes(`\`${code}\``);

test('the README keeps the two commands and npm test verbatim', () => {
  assert.ok(readme.includes('npm ci && npm start'));
  assert.ok(readme.includes('npm test'));
});

test('every log event in the catalogue has a row in the README', () => {
  const missing = Object.keys(LOG_EVENTS).filter((code) => !documented(code));
  assert.deepEqual(missing, []);
});

/** Every .ts file under lib/, as text. */
const libSources = (): string[] => {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
  return walk(path.join(ROOT, 'lib')).map((file) => readFileSync(file, 'utf8'));
};

test('every event code the code logs is in the catalogue, and every catalogued code is logged', () => {
  const codes = new Set<string>();
  for (const text of libSources()) {
    for (const m of text.matchAll(/\bevent: '([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
    for (const m of text.matchAll(/\blogEvent\([^,]+,\s*'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
    // a code chosen at run time is typed LogEvent on its line (the compiler checks those)
    for (const line of text.split('\n').filter((l) => /\bLogEvent\b/.test(l) && !/^\s*(import|export type)/.test(l))) {
      for (const m of line.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) codes.add(m[1]!);
    }
  }
  assert.ok(codes.has('LISTENING') && codes.has('QUEUED') && codes.has('DEFERRED'), 'the scan finds the codes');
  assert.deepEqual([...codes].filter((code) => !(code in LOG_EVENTS)).sort(), [], 'logged but not in lib/log/events.ts');
  assert.deepEqual(Object.keys(LOG_EVENTS).filter((code) => !codes.has(code)).sort(), [], 'in the catalogue but never logged');
});

test('every HTTP error name is in the catalogue with its status, and in the README', () => {
  const rows = new Map(readme.split('\n').flatMap((l) => {
    const m = /^\| `([A-Za-z]+)` \| (\d{3}) \|/.exec(l);
    return m ? [[m[1]!, Number(m[2])] as const] : [];
  }));
  for (const [name, { status }] of Object.entries(HTTP_ERRORS)) assert.equal(rows.get(name), status, `README's error table: ${name} ${status}`);
  // HttpError and HttpError.body take only catalogued names (HttpErrorName); a reply built by
  // hand would bypass that
  const byHand = libSources().flatMap((text) => [...text.matchAll(/\berror: '([A-Za-z]+)'/g)].map((m) => m[1]!));
  assert.deepEqual(byHand, [], 'error replies are built with HttpError, not by hand');
});

test('every hook name in HOOK_NAMES has a row in the README', () => {
  const missing = HOOK_NAMES.filter((name) => !documented(name));
  assert.deepEqual(missing, []);
});

test("the README's config table names real keys with their real defaults", () => {
  const defaults = parseToml(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as Record<string, unknown>;
  const rows = readme.split('\n').filter((l) => /^\| `[a-z][A-Za-z.]*[A-Za-z"]`/.test(l) && l.split('|').length >= 5);
  let compared = 0;
  for (const row of rows) {
    const [, keyCell, valueCell] = row.split('|').map((c) => c.trim());
    const keys = [...keyCell!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const values = [...valueCell!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const [i, key] of keys.entries()) {
      const spec = specAt(key);
      assert.ok(spec, `README names ${key}, which is not a config key`);
      if (values.length !== keys.length) continue; // "unset", "none"
      const shown = (parseToml(`v = ${values[i]}`) as { v: unknown }).v;
      const real = key.includes('.NAME.') ? spec.default : valueAt(defaults, key);
      assert.deepEqual(plain(shown), plain(real), `README shows ${key} = ${values[i]}`);
      compared++;
    }
  }
  assert.ok(compared > 40, `compared ${compared} defaults`);
});

/** The schema node of a dotted key; NAME and "…" stand for a name the user chooses. */
function specAt(key: string): Spec | undefined {
  let spec: Spec | undefined = configSchema as Spec;
  for (const part of key.split('.')) {
    if (!spec) return undefined;
    if (spec.kind === 'object') spec = spec.fields[part];
    else if (spec.kind === 'map' && (part === 'NAME' || part.startsWith('"'))) spec = spec.of;
    else return undefined;
  }
  return spec;
}

function valueAt(root: Record<string, unknown>, key: string): unknown {
  return key.split('.').reduce<unknown>((node, k) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined), root);
}

const plain = (v: unknown) => JSON.parse(JSON.stringify(v ?? null)) as unknown;
