/**
 * config/default.toml is the reference for users: every key of the schema must be in it, as a
 * key with its default or, for optional keys and keys of tables the user names (zones.NAME,
 * routes.NAME, [[dkim.keys]]), as a commented example; and nothing it shows may be stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { DEFAULT_CONFIG_FILE } from '../../lib/config/load.js';
import { configSchema } from '../../lib/config/schema.js';
import type { ObjectSpec, Spec } from '../../lib/config/spec.js';

const text = readFileSync(DEFAULT_CONFIG_FILE, 'utf8');
const parsed = parseToml(text) as Record<string, unknown>;
const root = configSchema as ObjectSpec;

/**
 * The part of the file that documents one top-level key: the blocks of its table headers
 * ([smtp], [smtp.users], …), each with the comment lines right above it.
 */
function region(top: string): string {
  const lines = text.split('\n');
  const headers = lines.flatMap((l, i) => (/^\[/.test(l) ? [i] : []));
  const starts = headers.map((h) => {
    let s = h;
    while (s > 0 && lines[s - 1]!.startsWith('#')) s--;
    return s;
  });
  const out: string[] = [];
  headers.forEach((h, k) => {
    const name = /^\[+\s*([A-Za-z]+)/.exec(lines[h]!)?.[1];
    if (name === top) out.push(...lines.slice(starts[k], starts[k + 1] ?? lines.length));
  });
  if (top === 'hostname') out.push(...lines.slice(0, headers[0]));
  return out.join('\n');
}

/** `name =` at the start of a (commented) line or inside an inline table. */
const mentions = (where: string, key: string) => new RegExp(`(^|[\\s{,#])${key}\\s*=`, 'm').test(where);

interface Entry {
  path: string;
  top: string;
  key: string;
  spec: Spec;
  /** under a table the user names, or in a list of tables */
  userNamed: boolean;
}

function walk(spec: ObjectSpec, path: string, top: string, userNamed: boolean, out: Entry[]): Entry[] {
  for (const [key, field] of Object.entries(spec.fields)) {
    const p = path ? `${path}.${key}` : key;
    const t = top || key;
    out.push({ path: p, top: t, key, spec: field, userNamed });
    if (field.kind === 'object') walk(field, p, t, userNamed, out);
    if ((field.kind === 'map' || field.kind === 'list') && field.of.kind === 'object') walk(field.of, `${p}.*`, t, true, out);
  }
  return out;
}

const entries = walk(root, '', '', false, []);

function valueAt(path: string): unknown {
  return path.split('.').reduce<unknown>((node, k) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[k] : undefined), parsed);
}

test('every key of the schema is documented in config/default.toml', () => {
  const missing: string[] = [];
  for (const e of entries) {
    if (!e.userNamed && !e.spec.optional) {
      if (valueAt(e.path) === undefined) missing.push(`${e.path} (needs a default)`);
    } else if (!mentions(region(e.top), e.key)) {
      missing.push(`${e.path} (needs a commented "${e.key} = …" example)`);
    }
  }
  assert.deepEqual(missing, [], `config/default.toml lacks:\n${missing.join('\n')}`);
  assert.ok(entries.length > 60, `walked ${entries.length} keys`);
});

test("the zone keys' documented defaults are the schema's defaults", () => {
  const zones = root.fields.zones!;
  assert.equal(zones.kind, 'map');
  const zone = (zones as { of: ObjectSpec }).of;
  const doc = region('zones');
  for (const [key, spec] of Object.entries(zone.fields)) {
    if (spec.default === undefined) continue;
    const m = new RegExp(`^#\\s+${key} = (.+?)(\\s{2,}|$)`, 'm').exec(doc);
    assert.ok(m, `zones: no "#   ${key} = <default>" line`);
    const documented = (parseToml(`v = ${m[1]}`) as { v: unknown }).v;
    assert.deepEqual(JSON.parse(JSON.stringify(documented)), spec.default, `zones.*.${key}`);
  }
});

test('nothing in config/default.toml names a key the schema does not have', () => {
  const known = new Set(entries.map((e) => e.key));
  // names of example entries the user makes up (a user, a zone, an interface, a domain)
  const examples = new Set(['alice']);
  const stale: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^#\s*([A-Za-z][A-Za-z0-9]*)\s*=/.exec(line);
    if (m && !known.has(m[1]!) && !examples.has(m[1]!)) stale.push(line);
    const header = /^#?\s*\[+\s*([A-Za-z][\w.]*)/.exec(line);
    if (header) {
      const first = header[1]!.split('.')[0]!;
      if (!(first in root.fields)) stale.push(line);
    }
  }
  assert.deepEqual(stale, []);
});
