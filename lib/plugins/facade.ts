/**
 * The `app` object a plugin's `init(app)` receives: the whole surface a plugin may use, typed.
 * Core plugins in plugins/core/ use exactly this and nothing else, so it is enough for anyone.
 *
 * Hooks and routes can be added only while `init` runs: after start-up the set is closed (no
 * runtime registration to reason about). A hook of the other process (a `sender:*` hook in the
 * master, say) is accepted and never called there, so one plugin can serve both processes.
 */
import { memoryOutbox, WebhookSender } from '../webhooks/sender.js';
import type { FastifySchema, HTTPMethods, RouteHandlerMethod } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { check, t, withDefault, type Infer, type Spec } from '../config/spec.js';
import { SmtpError } from '../errors/smtp-error.js';
import { HOOKS, isHookName, type HookHandler, type HookName, type PluginProcess } from './hooks.js';
import type { HookRunner } from './runner.js';

/** An HTTP route a plugin adds to the API (main process only; the API's token applies). */
export interface PluginRoute {
  method: HTTPMethods | HTTPMethods[];
  /** the path, e.g. "/metrics" or "/plugins/my-plugin/status" */
  url: string;
  /** fastify JSON schemas for params, querystring, body, response */
  schema?: FastifySchema;
  handler: RouteHandlerMethod;
}

/** Schema builders for `app.options()`: the same ones Sluice's own config uses. */
export const optionSchema = { ...t, default: withDefault };
export type OptionSchema = typeof optionSchema;
export type Options<F extends Record<string, Spec>> = { readonly [K in keyof F]: Infer<F[K]> };

/** The config key of a plugin's table, as config errors spell keys: plugins.name or plugins."core/x". */
export function pluginKey(name: string): string {
  return `plugins.${/^[A-Za-z_][A-Za-z0-9_-]*$/.test(name) ? name : JSON.stringify(name)}`;
}

/** A plugin's mistake at load time: its name leads the message. */
export class PluginLoadError extends Error {
  constructor(
    readonly plugin: string,
    message: string,
  ) {
    super(`plugin "${plugin}": ${message}`);
    this.name = 'PluginLoadError';
  }
}

export interface PluginApp {
  /** the plugin's name in config: "core/rspamd", "my-plugin" */
  readonly name: string;
  /** the module's `title` (its name when it has none) */
  readonly title: string;
  /** the process this instance runs in */
  readonly process: PluginProcess;
  /** the plugin's options: its [plugins."NAME"] table without `enabled` and `path`, frozen */
  readonly config: Readonly<Record<string, unknown>>;
  /** Sluice's whole config, frozen */
  readonly globalConfig: Config;
  /** a logger whose lines carry `plugin: NAME` */
  readonly logger: Logger;
  /** Registers a handler; an unknown name is a start-up error. */
  addHook<N extends HookName>(name: N, handler: HookHandler<N>): void;
  /** Adds an HTTP route to the API (main process; ignored in a sender). */
  addRoute(route: PluginRoute): void;
  /**
   * Validates `app.config` against a schema and returns it typed, defaults filled in; unknown or
   * wrong keys stop the start with every problem named, like Sluice's own config.
   *   const o = app.options((s) => ({ url: s.string(), timeout: s.default(s.duration(), 5000) }));
   */
  options<F extends Record<string, Spec>>(build: (s: OptionSchema) => F): Options<F>;
  /** An error to throw from a gate hook: the client gets this reply. */
  reject(responseCode: number, message: string, enhancedStatus?: string): Error;
  /** Called when the process stops (close sockets, clear timers). */
  onStop(handler: () => unknown): void;
  /**
   * A webhook sender, Sluice's own (lib/webhooks/sender.ts): signed POSTs with an event id,
   * retried, requests in flight and notifications kept both bounded; stopped with the process.
   *   const hook = app.webhook({ url, secret, timeoutMs: 10_000, maxAttempts: 6, retryAfterMs: (n) => 2000 * 2 ** (n - 1), concurrency: 4, maxPending: 10_000 });
   *   hook.send(JSON.stringify(payload));
   */
  webhook(opts: PluginWebhookOptions): { send(body: string, kind?: string): string };
}

export interface PluginWebhookOptions {
  url: string;
  secret?: string;
  timeoutMs: number;
  maxAttempts: number;
  /** the wait after the nth failed try (n from 1) */
  retryAfterMs: (attempt: number) => number;
  concurrency: number;
  maxPending: number;
}

/** What a plugin module exports (ESM named exports, `export default`, or `module.exports`). */
export interface PluginModule {
  title?: string;
  init(app: PluginApp): unknown;
}

export interface FacadeParts {
  name: string;
  title: string;
  process: PluginProcess;
  options: Record<string, unknown>;
  config: Config;
  logger: Logger;
  hooks: HookRunner;
  routes: PluginRoute[];
  stops: (() => unknown)[];
}

/** Builds one plugin's `app`; `close()` ends registration once its init has finished. */
export function createFacade(parts: FacadeParts): { app: PluginApp; close(): void; registered(): number } {
  const { name, hooks } = parts;
  let open = true;
  let own = 0;
  const frozen = deepFreeze(structuredClone(parts.options));
  const mustBeOpen = (what: string) => {
    if (!open) throw new PluginLoadError(name, `${what} is only possible while init() runs`);
  };
  const app: PluginApp = {
    name,
    title: parts.title,
    process: parts.process,
    config: frozen,
    globalConfig: parts.config,
    logger: parts.logger,
    addHook(hook, handler) {
      mustBeOpen('addHook');
      if (typeof hook !== 'string' || !isHookName(hook)) throw new PluginLoadError(name, `unknown hook "${String(hook)}" (known: ${Object.keys(HOOKS).join(', ')})`);
      if (typeof handler !== 'function') throw new PluginLoadError(name, `the handler for "${hook}" is not a function`);
      if (HOOKS[hook].process !== parts.process) return;
      hooks.add(hook, name, handler);
      own++;
    },
    addRoute(route) {
      mustBeOpen('addRoute');
      if (!route || typeof route.url !== 'string' || !route.url.startsWith('/') || typeof route.handler !== 'function') {
        throw new PluginLoadError(name, 'addRoute needs { method, url: "/…", handler }');
      }
      if (parts.process !== 'main') return;
      parts.routes.push({ ...route });
      own++;
    },
    options(build) {
      const fields = build(optionSchema);
      const problems: string[] = [];
      const value = check(t.object(fields) as Spec, parts.options, pluginKey(name), problems);
      if (problems.length) throw new PluginLoadError(name, `bad options:\n  ${problems.join('\n  ')}`);
      return deepFreeze(value) as Options<typeof fields>;
    },
    reject(responseCode, message, enhancedStatus) {
      if (!Number.isInteger(responseCode) || responseCode < 400 || responseCode > 599) throw new TypeError(`reject: responseCode must be 4xx or 5xx, got ${responseCode}`);
      if (enhancedStatus !== undefined && !new RegExp(`^${String(responseCode)[0]}\\.\\d{1,3}\\.\\d{1,3}$`).test(enhancedStatus)) {
        throw new TypeError(`reject: enhancedStatus must look like ${String(responseCode)[0]}.x.y, got ${enhancedStatus}`);
      }
      const fallback = responseCode >= 500 ? '5.0.0' : '4.0.0';
      return new SmtpError(responseCode, enhancedStatus ?? fallback, message);
    },
    onStop(handler) {
      if (typeof handler !== 'function') throw new PluginLoadError(name, 'onStop needs a function');
      parts.stops.push(handler);
    },
    webhook(opts) {
      const sender = new WebhookSender({ name, ...opts }, memoryOutbox, parts.logger);
      parts.stops.push(() => sender.stop());
      return { send: (body, kind = 'notification') => sender.send(opts.url, kind, body) };
    },
  };
  return {
    app,
    close: () => {
      open = false;
    },
    registered: () => own,
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
