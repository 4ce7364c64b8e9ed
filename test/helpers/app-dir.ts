/**
 * App dirs for Sluice run as a child process (sluice-child.ts): a temporary directory with a
 * config.toml, every listener on port 0 (the child logs the real ports), loopback only, info logs
 * (the child's log is how a test follows it) and never a DNS query off this machine. Two ways to
 * write the config: an object merged over the base (`childConfig` + `writeConfig`), or TOML
 * tables (`makeAppDir`), for the fault tests that add whole tables as text.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'smol-toml';
import { merge } from './test-config.js';

/** Writes `config` (a plain object) as the app dir's config.toml. */
export function writeConfig(dir: string, config: Record<string, unknown>): void {
  writeFileSync(path.join(dir, 'config.toml'), stringify(config));
}

/** Config for a child master: `overrides` merged over the base (zones as Sluice's defaults). */
export function childConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base: Record<string, unknown> = {
    hostname: 'sluice.test',
    log: { level: 'info' },
    smtp: { port: 0 },
    api: { port: 0 },
    channel: { port: 0 },
    inbound: { port: 0, minFreeSpace: 0, pop3: { port: 0 } },
    queue: { minFreeSpace: 0 },
    dns: { servers: ['127.0.0.1:9'] },
  };
  return merge(base, overrides);
}

export interface ConfigOptions {
  /** TOML appended after the base config (whole tables, e.g. "[smtp.interfaces.ext]\nhost = …") */
  extraToml?: string;
  /** keys added to the [queue] table */
  queue?: Record<string, string | number>;
  /** keys added to the [smtp] table */
  smtp?: Record<string, string | number | boolean>;
  /** keys added to the [zones.default] table (processes = 1 starts a delivery worker) */
  zone?: Record<string, string | number | boolean>;
}

/** A fresh app dir under os.tmpdir() with a config.toml written from TOML tables. */
export function makeAppDir(opts: ConfigOptions = {}, prefix = 'sluice-child-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755); // readable by an unprivileged child (F8d)
  writeAppConfig(dir, opts);
  return dir;
}

export function writeAppConfig(dir: string, opts: ConfigOptions = {}): void {
  const table = (name: string, base: Record<string, string | number | boolean>, over: Record<string, string | number | boolean> = {}) =>
    [`[${name}]`, ...Object.entries({ ...base, ...over }).map(([k, v]) => `${k} = ${JSON.stringify(v)}`)].join('\n');
  const toml = [
    'hostname = "sluice.test"',
    table('log', { level: 'info' }),
    table('smtp', { port: 0 }, opts.smtp),
    table('api', { port: 0 }),
    table('channel', { port: 0 }),
    table('inbound', { port: 0, minFreeSpace: 0 }),
    table('inbound.pop3', { port: 0 }),
    table('queue', { path: 'data/queue', minFreeSpace: 0 }, opts.queue),
    // acceptance only unless a test asks for a worker
    table('zones.default', { processes: 0 }, opts.zone),
    '[dns]\nservers = ["127.0.0.1:9"]',
    opts.extraToml ?? '',
  ].join('\n');
  writeFileSync(path.join(dir, 'config.toml'), toml + '\n');
}
