/**
 * Loads the config in layers — config/default.toml, the app dir's config.toml, then SLUICE_…
 * environment variables — validates the result once against the schema, reporting every wrong
 * key together, resolves relative paths against the app dir and deep-freezes it. A problem
 * never stops at the first: the caller gets them all (ConfigError.problems), one line each.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseToml } from 'smol-toml';
import { configSchema, type Config, type ListenerConfig } from './schema.js';
import { check, keyPath, suggest, type Spec } from './spec.js';
import { isLoopbackHost } from './net.js';

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
  checkAppDir(appDir);
  const files = [DEFAULT_CONFIG_FILE];
  let merged = readToml(DEFAULT_CONFIG_FILE);
  const appFile = path.join(appDir, 'config.toml');
  if (existsSync(appFile)) {
    merged = deepMerge(merged, readToml(appFile));
    files.push(appFile);
  }
  const problems: string[] = [];
  const env = envLayer(opts.env ?? process.env, merged, problems);
  merged = deepMerge(merged, env.layer);
  if (opts.overrides) merged = deepMerge(merged, opts.overrides);

  const checked: string[] = [];
  const config = check(configSchema as Spec, merged, '', checked) as Config;
  problems.push(...checked.map((p) => withSource(p, env.sources)));
  if (problems.length === 0) problems.push(...crossChecks(config));
  if (problems.length) throw new ConfigError(problems);
  return { config: deepFreeze(resolvePaths(config, appDir)), appDir, files };
}

/** A missing app dir is a typo, not a request for a new one (that is `sluice create`). */
function checkAppDir(appDir: string): void {
  let isDir = false;
  try {
    isDir = statSync(appDir).isDirectory();
  } catch {
    throw new ConfigError([`${appDir}: the app dir does not exist (make one with: sluice create ${appDir})`]);
  }
  if (!isDir) throw new ConfigError([`${appDir}: the app dir is not a directory`]);
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
    const e = err as Error & { line?: number; column?: number };
    const at = e.line ? `:${e.line}${e.column ? `:${e.column}` : ''}` : '';
    const msg = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
    throw new ConfigError([`${file}${at}: not valid TOML: ${msg}`]);
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

interface EnvLayer {
  layer: Table;
  /** key path → the variable that set it, so a bad value names the variable too */
  sources: [string, string][];
}

/**
 * SLUICE_SMTP__PORT=2587 → { smtp: { port: 2587 } }. Each level matches a schema key without
 * regard to case (env names are upper case, keys camelCase). A level under a table the user
 * names (zones, routes, interfaces, users) matches an entry of that name already in the files,
 * again without regard to case, and is taken in lower case when there is none: so
 * SLUICE_ZONES__BULK__PROCESSES=4 changes [zones.bulk] or makes it. Values are read as TOML
 * values (numbers, booleans, lists like ["a", "b"], inline tables); a value that does not parse
 * as TOML, or any value of a string key, is taken as the plain string. An empty value unsets an
 * optional key.
 */
function envLayer(env: NodeJS.ProcessEnv, files: Table, problems: string[]): EnvLayer {
  const layer: Table = {};
  const sources: [string, string][] = [];
  for (const name of Object.keys(env).sort()) {
    const raw = env[name];
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const parts = name.slice(ENV_PREFIX.length).split('__');
    const keys: string[] = [];
    let spec: Spec = configSchema as Spec;
    let fromFiles: unknown = files;
    let where = '';
    let problem: string | undefined;
    for (const part of parts) {
      let key: string | undefined;
      if (spec.kind === 'object') {
        const known = Object.keys(spec.fields);
        key = known.find((k) => k.toLowerCase() === part.toLowerCase());
        if (!key) {
          const hint = part.includes('_') ? '; levels are separated by a double underscore, e.g. SLUICE_SMTP__PORT' : '';
          problem = `${where ? `[${where}]` : 'the top level'} has no key "${part.toLowerCase()}" (${suggest(part, known)}${hint})`;
          break;
        }
        spec = spec.fields[key]!;
      } else if (spec.kind === 'map' && part !== '') {
        const existing = isTable(fromFiles) ? Object.keys(fromFiles) : [];
        key = existing.find((k) => k.toLowerCase() === part.toLowerCase()) ?? part.toLowerCase();
        spec = spec.of;
      } else {
        problem = part === '' ? 'an empty level (three or more underscores in a row?)' : `${where} takes no sub-keys`;
        break;
      }
      keys.push(key);
      where = keyPath(where, key);
      fromFiles = isTable(fromFiles) ? fromFiles[key] : undefined;
    }
    if (problem || keys.length === 0) {
      problems.push(`${name}: not a config key: ${problem ?? 'name a key, e.g. SLUICE_SMTP__PORT'}`);
      continue;
    }
    let target = layer;
    for (const key of keys.slice(0, -1)) {
      target = (target[key] = isTable(target[key]) ? target[key] : {}) as Table;
    }
    // an empty value unsets an optional key (SLUICE_API__TOKEN= in a compose file)
    target[keys[keys.length - 1]!] = raw === '' && spec.optional ? undefined : spec.kind === 'string' ? raw : envValue(raw);
    sources.push([where, name]);
  }
  return { layer, sources };
}

/** "smtp.port: expected …" → "… (set by SLUICE_SMTP__PORT)" when a variable set that key. */
function withSource(problem: string, sources: [string, string][]): string {
  const match = sources
    .filter(([p]) => problem.startsWith(`${p}:`) || problem.startsWith(`${p}.`) || problem.startsWith(`${p}[`))
    .sort((a, b) => b[0].length - a[0].length)[0];
  return match ? `${problem} (set by ${match[1]})` : problem;
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
  if (!isLoopbackHost(config.channel.host) && !config.channel.allowNonLoopback) {
    problems.push(
      `channel.host: ${config.channel.host} is not a loopback address; the data channel carries every message to the workers on this machine: keep it on loopback, or set channel.allowNonLoopback = true if you really mean it`,
    );
  }
  const bound = new Map<string, string>();
  const claim = (name: string, host: string, port: number) => {
    if (port === 0) return; // any free port: no clash possible
    const address = `${host}:${port}`;
    const other = bound.get(address);
    if (other) problems.push(`${name}.port: ${address} is taken by ${other} already`);
    else bound.set(address, name);
  };
  if (config.api.enabled) claim('api', config.api.host, config.api.port);
  claim('channel', config.channel.host, config.channel.port);
  for (const [name, listener] of listeners(config)) {
    if ((listener.key === undefined) !== (listener.cert === undefined)) {
      problems.push(`${name}.key / ${name}.cert: set both or neither`);
    }
    if (listener.secure && !listener.key) problems.push(`${name}.secure: needs key and cert`);
    claim(name, listener.host, listener.port);
  }
  const inbound = config.inbound;
  if (inbound.enabled) {
    if ((inbound.key === undefined) !== (inbound.cert === undefined)) problems.push('inbound.key / inbound.cert: set both or neither');
    if (!inbound.domains.length) problems.push('inbound.domains: name at least one domain, or set inbound.enabled = false');
    claim('inbound', inbound.host, inbound.port);
    if (inbound.spam.mode === 'rspamd' && !inbound.spam.rspamd.url) problems.push('inbound.spam.rspamd.url: needed when inbound.spam.mode is "rspamd" (or choose mode "bayes" or "both")');
    if (inbound.pop3.enabled) {
      if ((inbound.pop3.key === undefined) !== (inbound.pop3.cert === undefined)) problems.push('inbound.pop3.key / inbound.pop3.cert: set both or neither');
      claim('inbound.pop3', inbound.pop3.host, inbound.pop3.port);
    }
  }
  if (!config.zones.default) problems.push('zones.default: the default zone must exist');
  if (config.delivery.attemptTimeout >= config.queue.leaseTimeout) {
    // the worker must end an attempt and report it before the master gives up on the lease
    problems.push(`delivery.attemptTimeout: must be shorter than queue.leaseTimeout (${config.delivery.attemptTimeout} ms is not less than ${config.queue.leaseTimeout} ms)`);
  }
  return problems;
}

/** The main [smtp] listener and every [smtp.interfaces.NAME], with inherited keys filled in. */
export function listeners(config: Config): [string, ListenerConfig][] {
  const { users: _users, interfaces, enabled, maxAuthFailures: _max, authFailureWindow: _window, ...main } = config.smtp;
  const out: [string, ListenerConfig][] = enabled ? [['smtp', main]] : [];
  for (const [name, over] of Object.entries(interfaces)) {
    const defined = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) as Partial<ListenerConfig>;
    out.push([`smtp.interfaces.${name}`, { ...main, ...defined }]);
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
    delivery: { ...config.delivery, ca: abs(config.delivery.ca) },
    dkim: { keys: config.dkim.keys.map((k) => ({ ...k, privateKey: abs(k.privateKey)! })) },
    inbound: {
      ...config.inbound,
      path: abs(config.inbound.path)!,
      key: abs(config.inbound.key),
      cert: abs(config.inbound.cert),
      blocklist: abs(config.inbound.blocklist)!,
      spam: { ...config.inbound.spam, model: abs(config.inbound.spam.model)! },
      pop3: { ...config.inbound.pop3, key: abs(config.inbound.pop3.key), cert: abs(config.inbound.pop3.cert) },
    },
    plugins,
  } as Config;
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
