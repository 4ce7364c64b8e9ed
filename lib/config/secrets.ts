/**
 * Secrets in the config, found by walking the schema: the keys marked `t.secret(...)`, the
 * password of any URL (`https://user:password@host`), and in plugin tables (whose options the
 * schema cannot know) every key named like a secret (…secret, …password, …token, …key).
 *
 * - redactSecrets: the config as shown to a person (`sluice check-config --print`): each secret
 *   replaced by "(set)", everything else as it is.
 * - withoutSecrets: the config as handed to another process: marked secrets and URL passwords
 *   removed. Plugin options are left alone (a plugin may need its own secret where it runs).
 */
import type { Spec } from './spec.js';

export const HIDDEN = '(set)';

/** Plugin option names that hold secrets by convention. */
const SECRET_NAME = /(secret|password|passwd|token|credentials?|key)$/i;
/** scheme://user:password@ — the password part */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/?#@:\s]*):[^/?#@\s]*@/i;

const hideUrlPassword = (value: string) => value.replace(URL_PASSWORD, `$1:${HIDDEN}@`);
const dropUrlPassword = (value: string) => value.replace(URL_PASSWORD, '$1@');

export function redactSecrets(spec: Spec, value: unknown): unknown {
  return walk(spec, value, {
    secret: () => HIDDEN,
    string: hideUrlPassword,
    untyped: redactUntyped,
  });
}

export function withoutSecrets(spec: Spec, value: unknown): unknown {
  return walk(spec, value, {
    secret: () => undefined,
    string: dropUrlPassword,
    untyped: (v) => v,
  });
}

interface Rules {
  /** what a secret becomes (undefined: the key goes) */
  secret(value: unknown): unknown;
  string(value: string): string;
  /** a value the schema does not describe (a plugin's table) */
  untyped(value: unknown): unknown;
}

function walk(spec: Spec, value: unknown, rules: Rules): unknown {
  if (value === undefined || value === null) return value;
  if (spec.secret) return rules.secret(value);
  switch (spec.kind) {
    case 'object':
      return entries(value, (key, v) => (Object.hasOwn(spec.fields, key) ? walk(spec.fields[key]!, v, rules) : v));
    case 'map':
      // a table of anything (a plugin's options): its key names are all there is to go by
      if (spec.of.kind === 'any') return rules.untyped(value);
      return entries(value, (_key, v) => walk(spec.of, v, rules));
    case 'list':
      return Array.isArray(value) ? value.map((v) => walk(spec.of, v, rules)) : value;
    case 'string':
      return typeof value === 'string' ? rules.string(value) : value;
    case 'any':
      return rules.untyped(value);
    default:
      return value;
  }
}

function redactUntyped(value: unknown): unknown {
  if (typeof value === 'string') return hideUrlPassword(value);
  if (Array.isArray(value)) return value.map(redactUntyped);
  return entries(value, (key, v) => (SECRET_NAME.test(key) && v !== undefined && v !== null && v !== '' ? HIDDEN : redactUntyped(v)));
}

/** A table with each value mapped; a key whose value maps to undefined is left out. */
function entries(value: unknown, fn: (key: string, v: unknown) => unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const mapped = fn(key, v);
    if (mapped !== undefined) out[key] = mapped;
  }
  return out;
}
