/**
 * A tiny schema language for the config file: each node knows how to check and normalise one
 * value and reports problems with the dotted key path. Sizes become bytes and durations become
 * milliseconds here, so the rest of the code never parses "25MB" or "30s" again.
 *
 * The TypeScript type of the validated config is inferred from the schema (`Infer`), so the
 * schema is the single source of truth for both the checks and the types.
 */

export interface StringSpec<Opt extends boolean = boolean> {
  kind: 'string';
  optional: Opt;
  oneOf?: readonly string[];
  pattern?: RegExp;
  hint?: string;
}
export interface NumberSpec<Opt extends boolean = boolean> {
  kind: 'int' | 'size' | 'duration';
  optional: Opt;
  min?: number;
  max?: number;
}
export interface BoolSpec {
  kind: 'bool';
}
export interface ListSpec<Item extends Spec = Spec> {
  kind: 'list';
  of: Item;
  maxItems?: number;
}
export interface ObjectSpec<Fields extends Record<string, Spec> = Record<string, Spec>, Opt extends boolean = boolean> {
  kind: 'object';
  fields: Fields;
  optional: Opt;
}
export interface MapSpec<Item extends Spec = Spec> {
  kind: 'map';
  of: Item;
  keyPattern?: RegExp;
}
export interface AnySpec {
  kind: 'any';
}

export type Spec = (StringSpec | NumberSpec | BoolSpec | ListSpec | ObjectSpec | MapSpec | AnySpec) & { default?: unknown };

/**
 * A default for a key inside a user-named table (a zone, a route, a plugin): top-level defaults
 * live in config/default.toml, but entries the user creates need their own.
 */
export function withDefault<S extends Spec>(spec: S, value: unknown): S {
  return { ...spec, default: value };
}

export type Infer<S> = S extends StringSpec<infer O>
  ? O extends true
    ? string | undefined
    : string
  : S extends NumberSpec<infer O>
    ? O extends true
      ? number | undefined
      : number
    : S extends BoolSpec
      ? boolean
      : S extends ListSpec<infer I>
        ? readonly Infer<I>[]
        : S extends ObjectSpec<infer F, infer O>
          ? O extends true
            ? { readonly [K in keyof F]: Infer<F[K]> } | undefined
            : { readonly [K in keyof F]: Infer<F[K]> }
          : S extends MapSpec<infer I>
            ? { readonly [key: string]: Infer<I> }
            : S extends AnySpec
              ? unknown
              : never;

type StringOpts = Omit<StringSpec, 'kind' | 'optional'>;
type NumberOpts = Omit<NumberSpec, 'kind' | 'optional'>;

/** Builders, so the schema reads like a table. */
export const t = {
  string: (o: StringOpts = {}): StringSpec<false> => ({ kind: 'string', optional: false, ...o }),
  optString: (o: StringOpts = {}): StringSpec<true> => ({ kind: 'string', optional: true, ...o }),
  int: (o: NumberOpts = {}): NumberSpec<false> => ({ kind: 'int', optional: false, ...o }),
  optInt: (o: NumberOpts = {}): NumberSpec<true> => ({ kind: 'int', optional: true, ...o }),
  size: (o: NumberOpts = {}): NumberSpec<false> => ({ kind: 'size', optional: false, ...o }),
  optSize: (o: NumberOpts = {}): NumberSpec<true> => ({ kind: 'size', optional: true, ...o }),
  duration: (o: NumberOpts = {}): NumberSpec<false> => ({ kind: 'duration', optional: false, ...o }),
  bool: (): BoolSpec => ({ kind: 'bool' }),
  list: <I extends Spec>(of: I, o: { maxItems?: number } = {}): ListSpec<I> => ({ kind: 'list', of, ...o }),
  object: <F extends Record<string, Spec>>(fields: F): ObjectSpec<F, false> => ({ kind: 'object', fields, optional: false }),
  optObject: <F extends Record<string, Spec>>(fields: F): ObjectSpec<F, true> => ({ kind: 'object', fields, optional: true }),
  map: <I extends Spec>(of: I, o: { keyPattern?: RegExp } = {}): MapSpec<I> => ({ kind: 'map', of, ...o }),
  any: (): AnySpec => ({ kind: 'any' }),
};

const SIZE_UNITS: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "25MB" → 26214400; plain numbers are bytes. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB)?\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * SIZE_UNITS[(m[2] ?? 'B').toUpperCase()]!);
}

/** "30s" → 30000; plain numbers are milliseconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

function describe(spec: Spec): string {
  switch (spec.kind) {
    case 'string':
      return spec.hint ?? (spec.oneOf ? `one of ${spec.oneOf.map((v) => JSON.stringify(v)).join(', ')}` : 'a string');
    case 'int':
      return `a whole number${range(spec)}`;
    case 'size':
      return `a size like "25MB" or a number of bytes${range(spec)}`;
    case 'duration':
      return `a duration like "30s", "5m", "100ms" or a number of milliseconds${range(spec)}`;
    case 'bool':
      return 'true or false';
    case 'list':
      return 'a list';
    case 'object':
    case 'map':
      return 'a table';
    case 'any':
      return 'anything';
  }
}

function range(spec: NumberSpec): string {
  if (spec.min !== undefined && spec.max !== undefined) return ` from ${spec.min} to ${spec.max}`;
  if (spec.min !== undefined) return ` of at least ${spec.min}`;
  if (spec.max !== undefined) return ` of at most ${spec.max}`;
  return '';
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * Checks `value` against `spec`, collecting every problem (not just the first) as
 * "key.path: what was expected (got …)". Returns the normalised value.
 */
export function check(spec: Spec, value: unknown, path: string, errors: string[]): unknown {
  if (value === undefined && spec.default !== undefined) value = structuredClone(spec.default);
  if (value === undefined && (spec as { optional?: boolean }).optional === true) return undefined;
  const bad = (): undefined => {
    errors.push(`${path || '(root)'}: expected ${describe(spec)}, got ${preview(value)}`);
    return undefined;
  };
  switch (spec.kind) {
    case 'any':
      return value;
    case 'bool':
      return typeof value === 'boolean' ? value : bad();
    case 'string': {
      if (value === undefined && spec.optional) return undefined;
      if (typeof value !== 'string') return bad();
      if (spec.oneOf && !spec.oneOf.includes(value)) return bad();
      if (spec.pattern && !spec.pattern.test(value)) return bad();
      return value;
    }
    case 'int':
    case 'size':
    case 'duration': {
      if (value === undefined && spec.optional) return undefined;
      const n =
        spec.kind === 'size'
          ? parseSize(value)
          : spec.kind === 'duration'
            ? parseDuration(value)
            : typeof value === 'number' && Number.isInteger(value)
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
      if (value === undefined && spec.optional) return undefined;
      if (!isTable(value)) return bad();
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value)) {
        if (!(key in spec.fields)) errors.push(`${join(path, key)}: unknown key (known: ${Object.keys(spec.fields).join(', ')})`);
      }
      for (const [key, fieldSpec] of Object.entries(spec.fields)) {
        const v = value[key];
        if (v === undefined && !isOptional(fieldSpec)) {
          errors.push(`${join(path, key)}: missing, expected ${describe(fieldSpec)}`);
          continue;
        }
        out[key] = check(fieldSpec, v, join(path, key), errors);
      }
      return out;
    }
    case 'map': {
      if (!isTable(value)) return bad();
      const out: Record<string, unknown> = {};
      for (const [key, v] of Object.entries(value)) {
        if (spec.keyPattern && !spec.keyPattern.test(key)) {
          errors.push(`${join(path, key)}: invalid name ${JSON.stringify(key)}`);
          continue;
        }
        out[key] = check(spec.of, v, join(path, key), errors);
      }
      return out;
    }
  }
}

function isOptional(spec: Spec): boolean {
  return spec.kind === 'any' || spec.default !== undefined || (spec as { optional?: boolean }).optional === true;
}

function join(path: string, key: string): string {
  const part = /^[A-Za-z_][A-Za-z0-9_-]*$/.test(key) ? key : JSON.stringify(key);
  return path ? `${path}.${part}` : part;
}

function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  const s = JSON.stringify(value) ?? String(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
