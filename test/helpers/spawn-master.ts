/**
 * `sluice run` as a child process, for tests that need the master's own process: its RSS, a
 * signal, a crash, its event-loop lag. The app dir is a temp dir with a config.toml (every port
 * 0); the ports come from the LISTENING log lines on the child's stdout, and readiness from
 * STARTED. With `loopProbe`, loop-probe.ts runs inside the child and `loopLag()` reads it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { withNodeFlags } from '../../lib/app/node-flags.js';
import { stringify } from 'smol-toml';
import { tempDir, testOverrides } from './master.js';

const SLUICE_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const LOOP_PROBE = new URL('./loop-probe.js', import.meta.url).href;
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

export interface ChildMaster {
  child: ChildProcess;
  pid: number;
  dir: string;
  /** port of a listener by name: "smtp", "api", "smtp.interfaces.NAME" */
  port(name: string): number;
  /** every stdout line that was not JSON, and stderr, for failure messages */
  output(): string;
  /** SIGTERM, wait for the exit (SIGKILL after a deadline), remove the app dir unless told not to */
  stop(opts?: { keepDir?: boolean }): Promise<number | null>;
  /** (loopProbe) the child's event-loop delay since the last resetLoopLag(), ms */
  loopLag(): LoopLag;
  /** (loopProbe) starts a new measurement; resolves once the child has reset */
  resetLoopLag(): Promise<void>;
}

export interface LoopLag {
  count: number;
  p50: number;
  p99: number;
  max: number;
  resets: number;
}

/** Starts `sluice run` on a fresh app dir whose config.toml is the test config plus `overrides`. */
export async function startChildMaster(overrides: Record<string, unknown> = {}, opts: { loopProbe?: boolean } = {}): Promise<ChildMaster> {
  const dir = tempDir('sluice-child-');
  const config = testOverrides({ log: { level: 'info' }, ...overrides });
  writeFileSync(path.join(dir, 'config.toml'), stringify(config));
  const probeFile = path.join(dir, 'loop-probe.json');
  // the V8 flags `sluice` itself starts with (its script's first line, npm start, the unit)
  const nodeArgs = withNodeFlags(opts.loopProbe ? ['--import', LOOP_PROBE] : []);
  const env = { ...childEnv(), ...(opts.loopProbe ? { LOOP_PROBE_FILE: probeFile } : {}) };
  const child = spawn(process.execPath, [...nodeArgs, SLUICE_BIN, 'run', '-d', dir], { stdio: ['ignore', 'pipe', 'pipe'], env });
  const ports = new Map<string, number>();
  const other: string[] = [];
  child.stderr!.on('data', (d: Buffer) => other.push(d.toString()));

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sluice run did not start in ${START_TIMEOUT_MS} ms:\n${other.join('')}`)), START_TIMEOUT_MS);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`sluice run exited with ${code} before it started:\n${other.join('')}`));
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let event: { event?: string; listener?: string; port?: number };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        other.push(line + '\n');
        return;
      }
      if (event.event === 'LISTENING' && event.listener && typeof event.port === 'number') ports.set(event.listener, event.port);
      if (event.event === 'STARTED') {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    await started;
  } catch (err) {
    // a child that never started must not outlive the test (it would hold the runner open)
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    child,
    pid: child.pid!,
    dir,
    port(name) {
      const p = ports.get(name);
      if (p === undefined) throw new Error(`no listener ${name} (have ${[...ports.keys()].join(', ')})`);
      return p;
    },
    output: () => other.join(''),
    async stop(opts) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const code = await exited;
      clearTimeout(timer);
      if (!opts?.keepDir) rmSync(dir, { recursive: true, force: true });
      return code;
    },
    loopLag,
    async resetLoopLag() {
      const before = loopLag().resets;
      process.kill(child.pid!, 'SIGUSR2');
      const until = Date.now() + 5000;
      while (loopLag().resets === before) {
        if (Date.now() > until) throw new Error('the loop probe did not reset within 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };

  function loopLag(): LoopLag {
    if (!opts.loopProbe || !existsSync(probeFile)) throw new Error('start the child with { loopProbe: true }');
    return JSON.parse(readFileSync(probeFile, 'utf8')) as LoopLag;
  }
}

/** The test process's environment without SLUICE_… variables (the runner sets some; the child would read them as config). */
function childEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SLUICE_')));
}

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
