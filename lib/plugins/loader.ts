/**
 * Loads the plugins named in config for one process, in config order:
 *
 *   [plugins."core/rspamd"]            a core plugin: dist/plugins/core/rspamd(.js|/index.js)
 *   enabled = ["main"]                 "main", "sender", both, or false / [] (not loaded)
 *   [plugins."my-guard"]
 *   enabled = "main"                   a single string works too
 *   path = "plugins/my-guard.js"       a user plugin: a file (or a folder with index.js / a
 *                                      package.json "main"), relative to the app dir
 *   anything = "else"                  handed to the plugin as its options (app.config)
 *
 * A module is anything `import()` takes: ESM, CommonJS, compiled TypeScript. It exports `init`
 * (and optionally `title`) by name, as `export default { … }` or as `module.exports = { … }`.
 *
 * Whatever goes wrong — no such file, a syntax error, no init, init throws or takes too long, an
 * unknown hook, bad options — stops the start with a PluginLoadError that names the plugin.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { createFacade, pluginKey, PluginLoadError, type PluginModule, type PluginRoute } from './facade.js';
import type { PluginProcess } from './hooks.js';
import type { HookRunner } from './runner.js';

export interface PluginEntry {
  name: string;
  processes: PluginProcess[];
  /** absolute (load.ts resolved it against the app dir) */
  path?: string;
  options: Record<string, unknown>;
}

export interface LoadedPlugin {
  name: string;
  title: string;
  file: string;
}

export interface LoadedPlugins {
  plugins: LoadedPlugin[];
  /** routes added by main-process plugins, for the API */
  routes: { plugin: string; route: PluginRoute }[];
  /** runs the plugins' onStop handlers, last loaded first; never throws */
  stop(): Promise<void>;
}

const PROCESSES: readonly PluginProcess[] = ['main', 'sender'];
const CORE_PREFIX = 'core/';
const CORE_NAME = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** the compiled core plugins, beside the compiled lib/ */
const CORE_DIR = fileURLToPath(new URL('../../plugins/core/', import.meta.url));

/** The plugin tables of the config, checked; every problem is reported together. */
export function pluginEntries(config: Config): PluginEntry[] {
  const problems: string[] = [];
  const entries: PluginEntry[] = [];
  for (const [name, raw] of Object.entries(config.plugins)) {
    const key = pluginKey(name);
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problems.push(`${key}: expected a table with enabled = ["main"|"sender"]`);
      continue;
    }
    const { enabled, path: file, ...options } = raw as Record<string, unknown>;
    const processes = parseEnabled(enabled);
    if (!processes) {
      problems.push(`${key}.enabled: expected "main", "sender", a list of them, or false; got ${JSON.stringify(enabled) ?? 'nothing'}`);
      continue;
    }
    if (file !== undefined && (typeof file !== 'string' || !file)) {
      problems.push(`${key}.path: expected a path to the plugin's file`);
      continue;
    }
    if (file === undefined && !name.startsWith(CORE_PREFIX)) {
      problems.push(`${key}: a user plugin needs path = "plugins/${name}.js" (only core/… plugins are found by name)`);
      continue;
    }
    if (file === undefined && !CORE_NAME.test(name.slice(CORE_PREFIX.length))) {
      problems.push(`${key}: not a core plugin name`);
      continue;
    }
    entries.push({ name, processes, path: file as string | undefined, options });
  }
  if (problems.length) throw new ConfigError(problems);
  return entries;
}

function parseEnabled(value: unknown): PluginProcess[] | undefined {
  if (value === false) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || !list.every((v): v is PluginProcess => PROCESSES.includes(v as PluginProcess))) return undefined;
  return [...new Set(list)];
}

/** The file to import for an entry. */
export function pluginFile(entry: PluginEntry): string {
  if (entry.path) {
    const found = moduleFile(entry.path);
    if (!found) throw new PluginLoadError(entry.name, `cannot find ${entry.path}`);
    return found;
  }
  const base = entry.name.slice(CORE_PREFIX.length);
  const found = moduleFile(path.join(CORE_DIR, `${base}.js`)) ?? moduleFile(path.join(CORE_DIR, base));
  if (!found) throw new PluginLoadError(entry.name, `no such core plugin (core plugins: ${coreNames().join(', ') || 'none built'})`);
  return found;
}

/** A file as it is, or a folder's package.json "main" or index file. */
function moduleFile(p: string): string | undefined {
  const stat = statSync(p, { throwIfNoEntry: false });
  if (stat?.isFile()) return p;
  if (!stat?.isDirectory()) return undefined;
  try {
    const main = (JSON.parse(readFileSync(path.join(p, 'package.json'), 'utf8')) as { main?: unknown }).main;
    if (typeof main === 'string') return moduleFile(path.resolve(p, main));
  } catch {
    // no package.json: look for an index file
  }
  for (const index of ['index.js', 'index.mjs', 'index.cjs']) {
    if (statSync(path.join(p, index), { throwIfNoEntry: false })?.isFile()) return path.join(p, index);
  }
  return undefined;
}

export function coreNames(): string[] {
  try {
    return readdirSync(CORE_DIR, { withFileTypes: true })
      .filter((e) => (e.isFile() && e.name.endsWith('.js')) || (e.isDirectory() && moduleFile(path.join(CORE_DIR, e.name))))
      .map((e) => `core/${e.name.replace(/\.js$/, '')}`)
      .sort();
  } catch {
    return [];
  }
}

/** Imports a plugin module and finds its init. */
async function importPlugin(name: string, file: string): Promise<PluginModule> {
  let ns: Record<string, unknown>;
  try {
    ns = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (err) {
    throw new PluginLoadError(name, `cannot load ${file}: ${(err as Error)?.message ?? String(err)}`);
  }
  const candidates = [ns, ns.default];
  const mod = candidates.find((c): c is PluginModule => typeof c === 'object' && c !== null && typeof (c as { init?: unknown }).init === 'function')
    ?? candidates.find((c): c is PluginModule => typeof c === 'function' && typeof (c as { init?: unknown }).init === 'function');
  if (!mod) throw new PluginLoadError(name, `${file} exports no init(app) function`);
  if (mod.init.length >= 2) {
    throw new PluginLoadError(name, 'init(app, done) with a callback is not supported: make init async (or return a promise) instead');
  }
  return mod;
}

export interface LoadOptions {
  config: Config;
  process: PluginProcess;
  hooks: HookRunner;
  logger: Logger;
}

/** Loads and initialises every plugin enabled for `process`, in config order. */
export async function loadPlugins(opts: LoadOptions): Promise<LoadedPlugins> {
  const { config, process: proc, hooks, logger } = opts;
  const loaded: LoadedPlugin[] = [];
  const routes: LoadedPlugins['routes'] = [];
  const stops: { plugin: string; fn: () => unknown }[] = [];
  const result: LoadedPlugins = { plugins: loaded, routes, stop: () => runStops(stops, config.hooks.timeout, logger) };
  try {
    const entries = pluginEntries(config);
    // a plugin of the other process must at least exist: a worker that cannot find its plugin
    // would otherwise fail only after the master is up
    for (const entry of entries) if (entry.processes.length && !entry.processes.includes(proc)) pluginFile(entry);
    for (const entry of entries) {
      if (!entry.processes.includes(proc)) continue;
      const file = pluginFile(entry);
      const mod = await importPlugin(entry.name, file);
      const title = typeof mod.title === 'string' && mod.title ? mod.title : entry.name;
      const pluginRoutes: PluginRoute[] = [];
      const pluginStops: (() => unknown)[] = [];
      const facade = createFacade({
        name: entry.name,
        title,
        process: proc,
        options: entry.options,
        config,
        logger: logger.child({ plugin: entry.name }),
        hooks,
        routes: pluginRoutes,
        stops: pluginStops,
      });
      try {
        await withTimeout(Promise.resolve().then(() => mod.init(facade.app)), config.hooks.timeout, 'init');
      } catch (err) {
        // what init registered before it failed is stopped with the rest
        for (const fn of pluginStops) stops.push({ plugin: entry.name, fn });
        if (err instanceof PluginLoadError) throw err;
        throw new PluginLoadError(entry.name, `init failed: ${(err as Error)?.message ?? String(err)}`);
      } finally {
        facade.close();
      }
      for (const fn of pluginStops) stops.push({ plugin: entry.name, fn });
      for (const route of pluginRoutes) routes.push({ plugin: entry.name, route });
      if (facade.registered() === 0) {
        logger.warn({ event: 'PLUGIN_IDLE', plugin: entry.name, process: proc }, `plugin ${entry.name} registered no hook or route for the ${proc} process`);
      }
      loaded.push({ name: entry.name, title, file });
      logger.info({ event: 'PLUGIN_LOADED', plugin: entry.name, title, process: proc, file }, `plugin ${entry.name} (${title}) loaded`);
    }
  } catch (err) {
    await result.stop();
    throw err;
  }
  return result;
}

async function runStops(stops: { plugin: string; fn: () => unknown }[], timeoutMs: number, logger: Logger): Promise<void> {
  for (const { plugin, fn } of stops.splice(0).reverse()) {
    try {
      await withTimeout(Promise.resolve().then(fn), timeoutMs, 'onStop');
    } catch (err) {
      logger.warn({ event: 'PLUGIN_STOP_FAILED', plugin, err }, `plugin ${plugin}: stop failed`);
    }
  }
}

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}


/**
 * For `sluice check-config`: loads every enabled plugin as each of its processes would, then
 * stops it again. Returns "name (process)" for each; throws like a start would.
 */
export async function checkPlugins(config: Config, logger: Logger, makeRunner: () => HookRunner): Promise<string[]> {
  const ok: string[] = [];
  for (const proc of PROCESSES) {
    const loaded = await loadPlugins({ config, process: proc, hooks: makeRunner(), logger });
    await loaded.stop();
    ok.push(...loaded.plugins.map((p) => `${p.name} (${proc})`));
  }
  return ok;
}
