/**
 * Test harness: a real Master in this process, on port 0 listeners and a fresh LevelDB queue in a
 * temporary app dir. Logs are silent unless SLUICE_TEST_LOG names a level.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Master } from '../../lib/app/master.js';
import { loadConfig } from '../../lib/config/load.js';
import { createLogger, type Logger } from '../../lib/log/logger.js';

export interface TestMaster {
  master: Master;
  dir: string;
  smtpPort: number;
  apiPort: number;
  api: string;
  /** port of a named SMTP listener */
  port(name: string): number;
  stop(): Promise<void>;
}

export function tempDir(prefix = 'sluice-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Config for tests: loopback, port 0, silent. `overrides` is laid on top. */
export function testOverrides(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const base = {
    hostname: 'sluice.test',
    log: { level: process.env.SLUICE_TEST_LOG ?? 'silent' },
    smtp: { port: 0 },
    api: { port: 0 },
    channel: { port: 0 },
    inbound: { port: 0, minFreeSpace: 0, pop3: { port: 0 } },
    queue: { minFreeSpace: 0 },
    // no delivery workers unless a test asks for them, and never a DNS query off this machine
    zones: { default: { processes: 0 } },
    dns: { servers: ['127.0.0.1:9'] },
  };
  const out = merge(base, overrides);
  // every zone a test names is acceptance-only unless the test asks for workers
  for (const zone of Object.values((out.zones ?? {}) as Record<string, Record<string, unknown>>)) {
    if (zone.processes === undefined) zone.processes = 0;
  }
  return out;
}

export function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** `logger`: the master's logger instead of one at the config's level (a test that reads the log). */
export async function startMaster(overrides: Record<string, unknown> = {}, dir = tempDir(), logger?: Logger): Promise<TestMaster> {
  const o = testOverrides(overrides);
  const loaded = loadConfig({ appDir: dir, env: {}, overrides: o });
  const master = new Master(loaded, logger ?? createLogger(loaded.config.log.level));
  await master.start();
  const find = (name: string) => {
    const l = master.listening.find((x) => x.name === name);
    if (!l) throw new Error(`no listener ${name}`);
    return l.port;
  };
  const apiPort = master.listening.find((l) => l.kind === 'api')?.port ?? 0;
  const smtpPort = master.listening.find((l) => l.kind === 'smtp')?.port ?? 0;
  return {
    master,
    dir,
    smtpPort,
    apiPort,
    api: `http://127.0.0.1:${apiPort}`,
    port: find,
    async stop() {
      await master.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
