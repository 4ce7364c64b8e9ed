/**
 * The config every test starts from, in-process (master.ts) or as a child (sluice-child.ts):
 * loopback, port 0 everywhere, silent logs unless SLUICE_TEST_LOG names a level, no delivery
 * workers unless a test asks, never a DNS query off this machine. No imports of Sluice itself, so
 * the benchmarks can share the child-process helper without loading the master.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function tempDir(prefix = 'sluice-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/** Config for tests; `overrides` is laid on top. */
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

/** `b` laid over `a`, objects merged key by key (arrays replaced). */
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

