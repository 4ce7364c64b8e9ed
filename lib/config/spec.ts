/**
 * A tiny schema language for the config file: each node knows how to check and normalise one
 * value and reports problems with the dotted key path. Sizes become bytes and durations become
 * milliseconds here, so the rest of the code never parses "25MB" or "30s" again.
 *
 * The TypeScript type of the validated config is inferred from the schema (`Infer`), so the
 * schema is the single source of truth for both the checks and the types. A node marked
 * `optional` infers as `T | undefined` and may be left out; every other key must be present
 * after the layers are merged (config/default.toml gives every top-level key its default,
 * `withDefault` gives one to keys inside tables the user names).
 */

interface Common {
  /** the key may be absent; its value is then undefined */
  optional?: boolean;
  /** used when the key is absent (for keys inside user-named tables) */
  default?: unknown;
  /** a secret (a token, a password hash): never printed, never handed to a process that does not need it */
  secret?: boolean;
}
export interface StringSpec extends Common {
  kind: 'string';
  oneOf?: readonly string[];
  pattern?: RegExp;
  /** a check a pattern cannot express (an IP address, a CIDR block) */
  valid?: (value: string) => boolean;
  /** why a well-formed value is still refused (undefined: it is not), said instead of the hint */
  refuse?: (value: string) => string | undefined;
  /** what a good value looks like, for messages: 'a CIDR block like "127.0.0.0/8"' */
  hint?: string;
}
export interface NumberSpec extends Common {
  kind: 'int' | 'size' | 'duration';
  min?: number;
  max?: number;
}
export interface BoolSpec extends Common {
  kind: 'bool';
}
export interface ListSpec<Item extends Spec = Spec> extends Common {
  kind: 'list';
  of: Item;
  maxItems?: number;
}
export interface ObjectSpec<Fields extends Record<string, Spec> = Record<string, Spec>> extends Common {
  kind: 'object';
  fields: Fields;
}
export interface MapSpec<Item extends Spec = Spec> extends Common {
  kind: 'map';
  of: Item;
  keyPattern?: RegExp;
}
export interface AnySpec extends Common {
  kind: 'any';
}

export type Spec = StringSpec | NumberSpec | BoolSpec | ListSpec | ObjectSpec | MapSpec | AnySpec;

type InferBase<S> = S extends StringSpec
  ? string
  : S extends NumberSpec
    ? number
    : S extends BoolSpec
      ? boolean
      : S extends ListSpec<infer I>
        ? readonly Infer<I>[]
        : S extends ObjectSpec<infer F>
          ? { readonly [K in keyof F]: Infer<F[K]> }
          : S extends MapSpec<infer I>
            ? { readonly [key: string]: Infer<I> }
            : unknown;

export type Infer<S> = S extends { optional: true } ? InferBase<S> | undefined : InferBase<S>;

/** The same spec, allowed to be absent (and without a default). */
export type Optional<S extends Spec> = Omit<S, 'optional' | 'default'> & { optional: true; default?: undefined };

function optional<S extends Spec>(spec: S): Optional<S> {
  return { ...spec, optional: true, default: undefined };
}

/**
 * A default for a key inside a user-named table (a zone, a route, a plugin): top-level defaults
 * live in config/default.toml, but entries the user creates need their own.
 */
export function withDefault<S extends Spec>(spec: S, value: unknown): S {
  return { ...spec, default: value };
}

type StringOpts = Omit<StringSpec, 'kind' | 'optional' | 'default'>;
type NumberOpts = Omit<NumberSpec, 'kind' | 'optional' | 'default'>;

/** Builders, so the schema reads like a table. */
export const t = {
  string: (o: StringOpts = {}): StringSpec => ({ kind: 'string', ...o }),
  int: (o: NumberOpts = {}): NumberSpec => ({ kind: 'int', ...o }),
  size: (o: NumberOpts = {}): NumberSpec => ({ kind: 'size', ...o }),
  duration: (o: NumberOpts = {}): NumberSpec => ({ kind: 'duration', ...o }),
  bool: (): BoolSpec => ({ kind: 'bool' }),
  list: <I extends Spec>(of: I, o: { maxItems?: number } = {}): ListSpec<I> => ({ kind: 'list', of, ...o }),
  object: <F extends Record<string, Spec>>(fields: F): ObjectSpec<F> => ({ kind: 'object', fields }),
  map: <I extends Spec>(of: I, o: { keyPattern?: RegExp } = {}): MapSpec<I> => ({ kind: 'map', of, ...o }),
  any: (): AnySpec => ({ kind: 'any' }),
  optional,
  /** The same spec, marked secret (see secrets.ts). */
  secret: <S extends Spec>(spec: S): S => ({ ...spec, secret: true }),
  optString: (o: StringOpts = {}) => optional(t.string(o)),
  optObject: <F extends Record<string, Spec>>(fields: F) => optional(t.object(fields)),
  /** Every field of a table made optional: for overrides whose unset keys are inherited. */
  partial: <F extends Record<string, Spec>>(fields: F): { [K in keyof F]: Optional<F[K]> } =>
    Object.fromEntries(Object.entries(fields).map(([k, s]) => [k, optional(s)])) as { [K in keyof F]: Optional<F[K]> },
};

/** Sizes are binary: 1KB = 1024 bytes. "K", "KB" and "KiB" all mean the same. */
const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "25MB" → 26214400; plain numbers are bytes. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(?:([KMG])(?:i?B)?|(B))?\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? m[3] ?? '').toUpperCase()]!);
}

/** "30s" → 30000; plain numbers are milliseconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/** What a good value looks like, for "expected …" messages. */
export function describe(spec: Spec): string {
  switch (spec.kind) {
    case 'string':
      return spec.hint ?? (spec.oneOf ? `one of ${spec.oneOf.map((v) => JSON.stringify(v)).join(', ')}` : 'a string');
    case 'int':
      return `a whole number${range(spec, String)}`;
    case 'size':
      return `a size like "25MB" or a number of bytes${range(spec, formatSize)}`;
    case 'duration':
      return `a duration like "30s", "5m", "100ms" or a number of milliseconds${range(spec, formatDuration)}`;
    case 'bool':
      return 'true or false';
    case 'list':
      return `a list (each ${describe(spec.of)})`;
    case 'object':
    case 'map':
      return 'a table';
    case 'any':
      return 'anything';
  }
}

function range(spec: NumberSpec, show: (n: number) => string): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` from ${show(spec.min)} to ${show(spec.max)}`;
  if (spec.min !== undefined) return ` of at least ${show(spec.min)}`;
  if (spec.max !== undefined) return ` of at most ${show(spec.max)}`;
  return '';
}

function formatSize(bytes: number): string {
  for (const [unit, factor] of [['GB', 1024 ** 3], ['MB', 1024 ** 2], ['KB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes} bytes`;
}

function formatDuration(ms: number): string {
  for (const [unit, factor] of [['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= factor && ms % factor === 0) return `${ms / factor}${unit}`;
  }
  return `${ms}ms`;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Checks `value` against `spec`, collecting every problem (not just the first) as
 * "key.path: what was expected, got …". Returns the normalised value.
 */
export function check(spec: Spec, value: unknown, path: string, errors: string[]): unknown {
  if (value === undefined && spec.default !== undefined) value = structuredClone(spec.default);
  if (value === undefined && spec.optional) return undefined;
  const bad = (): undefined => {
    // a secret's wrong value may be the secret itself (a password where its hash belongs)
    errors.push(`${path || '(root)'}: expected ${describe(spec)}, got ${spec.secret ? 'something else (a secret: not shown)' : preview(value)}`);
    return undefined;
  };
  switch (spec.kind) {
    case 'any':
      return value;
    case 'bool':
      return typeof value === 'boolean' ? value : bad();
    case 'string': {
      if (typeof value !== 'string') return bad();
      if (spec.oneOf && !spec.oneOf.includes(value)) return bad();
      if (spec.pattern && !spec.pattern.test(value)) return bad();
      if (spec.valid && !spec.valid(value)) return bad();
      const reason = spec.refuse?.(value);
      if (reason) {
        errors.push(`${path}: ${reason}`);
        return undefined;
      }
      return value;
    }
    case 'int':
    case 'size':
    case 'duration': {
      const n =
        spec.kind === 'size'
          ? parseSize(value)
          : spec.kind === 'duration'
            ? parseDuration(value)
            : typeof value === 'number' && Number.isSafeInteger(value)
              ? value
              : undefined;
      if (n === undefined) return bad();
      if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) return bad();
      return n;
    }
    case 'list': {
      if (!Array.isArray(value)) return bad();
      if (spec.maxItems !== undefined && value.length > spec.maxItems) {
        errors.push(`${path}: at most ${spec.maxItems} entries allowed, got ${value.length}`);
        return undefined;
      }
      return value.map((item, i) => check(spec.of, item, `${path}[${i}]`, errors));
    }
    case 'object': {
      if (!isTable(value)) return bad();
      const known = Object.keys(spec.fields);
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (!Object.hasOwn(spec.fields, key)) errors.push(`${keyPath(path, key)}: unknown key (${suggest(key, known)})`);
      }
      for (const [key, fieldSpec] of Object.entries(spec.fields)) {
        const v = value[key];
        if (v === undefined && !isOptional(fieldSpec)) {
          errors.push(`${keyPath(path, key)}: missing, expected ${describe(fieldSpec)}`);
          continue;
        }
        out[key] = check(fieldSpec, v, keyPath(path, key), errors);
      }
      return out;
    }
    case 'map': {
      if (!isTable(value)) return bad();
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(value)) {
        if (spec.keyPattern && !spec.keyPattern.test(key)) {
          errors.push(`${keyPath(path, key)}: invalid name ${JSON.stringify(key)} (letters, digits, ".", "_" and "-", at most 64)`);
          continue;
        }
        out[key] = check(spec.of, v, keyPath(path, key), errors);
      }
      return out;
    }
  }
}

function isOptional(spec: Spec): boolean {
  return spec.kind === 'any' || spec.default !== undefined || spec.optional === true;
}

/** A dotted key path as messages show it; keys that are not plain words are quoted (TOML style). */
export function keyPath(path: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${part}` : part;
}

/** "did you mean …" for a near miss (a typo, a wrong case), else the list of known keys. */
export function suggest(key: string, known: readonly string[]): string {
  const near = known
    .map((k) => [k, distance(key.toLowerCase(), k.toLowerCase())] as const)
    .filter(([k, d]) => d <= Math.max(1, Math.floor(k.length / 4)))
    .sort((a, b) => a[1] - b[1])[0];
  return near ? `did you mean "${near[0]}"?` : `known keys: ${known.join(', ')}`;
}

/** Levenshtein distance, with an adjacent swap counted as one edit ("prot" → "port"). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
