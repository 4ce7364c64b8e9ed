/**
 * What a config reload (SIGHUP) may change while Sluice runs: compares the running config with a
 * freshly loaded one and sorts every changed key path into "applied" or "needs a restart".
 *
 * Invariants:
 * - Pure: no I/O, no clock; the same two configs give the same plan.
 * - A key is applied live only when a rule below names it; anything else (a new key, a listener,
 *   the queue, the channel, the inbound receiver, plugins) needs a restart. Being wrong on the
 *   side of "restart" costs a line in the log; being wrong the other way half-applies a change.
 * - `effective` is the running config with the applied paths taken from the new one and every
 *   other path left as it runs, so what the process does and what it reports agree, and the
 *   next reload reports a still-pending restart key again.
 * - The plan holds key paths only, never values: a changed secret is named, not shown.
 */
import type { Config } from './schema.js';
import { deepFreeze } from './load.js';

/**
 * Where an applied key takes effect. `master`: read per use by the master (logger, scheduler,
 * per-domain limits). `workers`: held by the delivery workers, which are replaced one by one
 * (Supervisor.reload) so that new ones start with the new config.
 */
export type Applier = 'master' | 'workers';

interface Rule {
  /** dot path; `*` matches one key (a zone's name) */
  pattern: string[];
  where: Applier[];
}

const rule = (path: string, ...where: Applier[]): Rule => ({ pattern: path.split('.'), where });

/**
 * Every key applied without a restart. A zone's worker count and its selection keys
 * (senderDomains, recipientDomains, routingHeaders) are not here: the number of worker slots and
 * the zone selector are fixed at start; neither is a whole new zone.
 */
const LIVE: Rule[] = [
  rule('log.level', 'master', 'workers'),
  rule('routes', 'workers'),
  rule('tlsPolicies', 'workers'),
  rule('dkim', 'workers'),
  rule('delivery.sessionIdle', 'master', 'workers'),
  rule('delivery.maxRecipientsPerTransaction', 'master', 'workers'),
  rule('delivery', 'workers'),
  rule('zones.*.connections', 'workers'),
  rule('zones.*.throttling', 'workers'),
  rule('zones.*.connectionsPerDomain', 'master', 'workers'),
  rule('zones.*.domainRatePerMinute', 'master'),
  rule('zones.*.pool', 'workers'),
  rule('zones.*.ignoreIPv6', 'workers'),
  rule('zones.*.tls', 'workers'),
  rule('zones.*.route', 'workers'),
];

export interface ReloadPlan {
  /** every changed leaf key path, sorted, as TOML dotted keys (`routes."example.test"`) */
  changed: string[];
  /** the changed paths applied without a restart */
  applied: string[];
  /** the changed paths that take effect only after a restart */
  restart: string[];
  /** where the applied paths take effect */
  appliers: Set<Applier>;
  /** the config to run with from now on: the old one plus the applied paths */
  effective: Config;
}

export function planReload(running: Config, loaded: Config): ReloadPlan {
  const applied: string[][] = [];
  const restart: string[][] = [];
  const appliers = new Set<Applier>();
  for (const parts of diffPaths(running, loaded)) {
    const match = LIVE.find((r) => matches(r.pattern, parts));
    // a zone that is new or gone changes the worker slots: restart, whatever the key
    const zoneMissing = parts[0] === 'zones' && (!Object.hasOwn(running.zones, parts[1]!) || !Object.hasOwn(loaded.zones, parts[1]!));
    // the worker must end an attempt before the master gives up on its lease, and the lease
    // timeout is fixed at start: a longer attempt waits for the restart that brings both
    const outlivesLease = parts.join('.') === 'delivery.attemptTimeout' && loaded.delivery.attemptTimeout >= running.queue.leaseTimeout;
    if (match && !zoneMissing && !outlivesLease) {
      applied.push(parts);
      for (const w of match.where) appliers.add(w);
    } else {
      restart.push(parts);
    }
  }
  let effective: unknown = running;
  for (const parts of applied) effective = setPath(effective, parts, getPath(loaded, parts));
  const names = (paths: string[][]) => paths.map(keyName).sort();
  return { changed: names([...applied, ...restart]), applied: names(applied), restart: names(restart), appliers, effective: deepFreeze(effective as Config) };
}

/** A rule matches a path it is a prefix of (`routes` covers `routes.example.test.host`). */
function matches(pattern: string[], parts: string[]): boolean {
  if (parts.length < pattern.length) return false;
  return pattern.every((p, i) => p === '*' || p === parts[i]);
}

const isTable = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Leaf paths whose values differ, as key lists. Tables are walked key by key (a key on one side
 * only is a change at that key); lists and scalars compare whole, a list being one setting.
 */
export function diffPaths(a: unknown, b: unknown, prefix: string[] = []): string[][] {
  if (isTable(a) && isTable(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => diffPaths(a[k], b[k], [...prefix, k]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

/** The changed keys as a person reads them: TOML's dotted keys, quoted where a key has a dot. */
export function changedPaths(a: unknown, b: unknown): string[] {
  return diffPaths(a, b).map(keyName);
}

const keyName = (parts: string[]): string => parts.map((k) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k))).join('.');

function getPath(v: unknown, parts: string[]): unknown {
  return parts.reduce<unknown>((cur, k) => (isTable(cur) ? cur[k] : undefined), v);
}

/** A copy of `v` with one path set (undefined removes the key); `v` itself is left unchanged. */
function setPath(v: unknown, parts: string[], value: unknown): unknown {
  const [head, ...rest] = parts;
  if (head === undefined) return value;
  const table = isTable(v) ? { ...v } : {};
  const next = setPath(table[head], rest, value);
  if (next === undefined) delete table[head];
  else table[head] = next;
  return table;
}
