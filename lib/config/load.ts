/**
 * Loads the config in layers — config/default.toml, the app dir's config.toml, then SLUICE_…
 * environment variables — validates the result once against the schema, reporting every wrong
 * key together, resolves relative paths against the app dir and deep-freezes it.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { configSchema, type Config, type ListenerConfig } from './schema.js';
import { check, type Spec } from './spec.js';
import { isCidr, isLoopbackHost } from './net.js';

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL('../../../config/default.toml', import.meta.url));
export const ENV_PREFIX = 'SLUICE_';

type Table = Record<string, unknown>;

export interface LoadOptions {
  /** the app dir; config.toml is read from it and relative paths resolve against it */
  appDir: string;
  env?: NodeJS.ProcessEnv;
  /** extra layer on top of everything (used by tests) */
  overrides?: Table;
}

export interface LoadedConfig {
  config: Config;
  appDir: string;
  /** the files that were read, for the start-up log */
  files: string[];
}

export function loadConfig(opts: LoadOptions): LoadedConfig {
  const appDir = path.resolve(opts.appDir);
  const files = [DEFAULT_CONFIG_FILE];
  let merged = readToml(DEFAULT_CONFIG_FILE);
  const appFile = path.join(appDir, 'config.toml');
  if (existsSync(appFile)) {
    merged = deepMerge(merged, readToml(appFile));
    files.push(appFile);
  }
  const problems: string[] = [];
  merged = deepMerge(merged, envLayer(opts.env ?? process.env, problems));
  if (opts.overrides) merged = deepMerge(merged, opts.overrides);

  const config = check(configSchema as Spec, merged, '', problems) as Config;
  if (problems.length === 0) problems.push(...crossChecks(config));
  if (problems.length) throw new ConfigError(problems);
  return { config: deepFreeze(resolvePaths(config, appDir)), appDir, files };
}

function readToml(file: string): Table {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  try {
    return parseToml(text) as Table;
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0];
    throw new ConfigError([`${file}: not valid TOML: ${msg}`]);
  }
}

/** Tables merge key by key; anything else (lists included) is replaced. */
export function deepMerge(base: Table, over: Table): Table {
  const out: Table = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const prev = out[key];
    out[key] = isTable(prev) && isTable(value) ? deepMerge(prev, value) : value;
  }
  return out;
}

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/**
 * SLUICE_SMTP__PORT=2587 → { smtp: { port: 2587 } }. Each level matches a schema key without
 * regard to case (env names are upper case, keys camelCase); names under user tables (zones,
 * routes) are taken in lower case. Values are read as TOML values when they parse as one
 * (numbers, booleans, lists), else as plain strings.
 */
function envLayer(env: NodeJS.ProcessEnv, problems: string[]): Table {
  const layer: Table = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const parts = name.slice(ENV_PREFIX.length).split('__');
    const keys: string[] = [];
    let spec: Spec | undefined = configSchema as Spec;
    for (const part of parts) {
      if (!spec) break;
      if (spec.kind === 'object') {
        const key: string | undefined = Object.keys(spec.fields).find((k) => k.toLowerCase() === part.toLowerCase());
        if (!key) {
          spec = undefined;
          break;
        }
        keys.push(key);
        spec = spec.fields[key];
      } else if (spec.kind === 'map') {
        keys.push(part.toLowerCase());
        spec = spec.of;
      } else {
        spec = undefined;
      }
    }
    if (!spec || keys.length !== parts.length) {
      problems.push(`${name}: not a config key (use SLUICE_SECTION__KEY, e.g. SLUICE_SMTP__PORT)`);
      continue;
    }
    let target = layer;
    for (const key of keys.slice(0, -1)) {
      target = (target[key] = isTable(target[key]) ? target[key] : {}) as Table;
    }
    target[keys[keys.length - 1]!] = spec.kind === 'string' ? raw : envValue(raw);
  }
  return layer;
}

function envValue(raw: string): unknown {
  try {
    return (parseToml(`v = ${raw}`) as Table).v;
  } catch {
    return raw;
  }
}

/** Rules that span several keys. */
function crossChecks(config: Config): string[] {
  const problems: string[] = [];
  if (config.api.enabled && !isLoopbackHost(config.api.host) && !config.api.token) {
    problems.push(`api.token: required when api.host (${config.api.host}) is not a loopback address`);
  }
  for (const [name, listener] of listeners(config)) {
    if ((listener.key === undefined) !== (listener.cert === undefined)) {
      problems.push(`${name}.key / ${name}.cert: set both or neither`);
    }
    if (listener.secure && !listener.key) problems.push(`${name}.secure: needs key and cert`);
  }
  if (!config.zones.default) problems.push('zones.default: the default zone must exist');
  for (const [name, listener] of listeners(config)) {
    for (const key of ['trustedNetworks', 'proxyProtocol'] as const) {
      for (const [i, cidr] of listener[key].entries()) {
        if (!isCidr(cidr)) problems.push(`${name}.${key}[${i}]: expected an address or a CIDR block like "127.0.0.0/8", got ${JSON.stringify(cidr)}`);
      }
    }
  }
  return problems;
}

/** The main [smtp] listener and every [smtp.interfaces.NAME], with inherited keys filled in. */
export function listeners(config: Config): [string, ListenerConfig][] {
  const { users: _users, interfaces, enabled, ...main } = config.smtp;
  const out: [string, ListenerConfig][] = enabled ? [['smtp', main]] : [];
  for (const [name, over] of Object.entries(interfaces)) {
    const defined = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined));
    out.push([`smtp.interfaces.${name}`, { ...main, ...defined } as ListenerConfig]);
  }
  return out;
}

function resolvePaths(config: Config, appDir: string): Config {
  const abs = (p: string | undefined) => (p === undefined ? undefined : path.resolve(appDir, p));
  const interfaces = Object.fromEntries(
    Object.entries(config.smtp.interfaces).map(([n, i]) => [n, { ...i, key: abs(i.key), cert: abs(i.cert) }]),
  );
  const plugins = Object.fromEntries(
    Object.entries(config.plugins).map(([n, p]) => [n, typeof p.path === 'string' ? { ...p, path: abs(p.path) } : p]),
  );
  return {
    ...config,
    smtp: { ...config.smtp, key: abs(config.smtp.key), cert: abs(config.smtp.cert), interfaces },
    queue: { ...config.queue, path: abs(config.queue.path)! },
    dkim: { keys: config.dkim.keys.map((k) => ({ ...k, privateKey: abs(k.privateKey)! })) },
    plugins,
  } as Config;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
