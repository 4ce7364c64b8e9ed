/**
 * Sluice as a child process, for tests that must kill the master itself or read what the whole
 * process tree prints: `node dist/bin/sluice.js run -d <appDir>` with a config.toml written
 * here. Its stdout is JSON log lines (workers inherit the master's stdout, so theirs come too);
 * they are parsed as they arrive. Ports come from the LISTENING events (every listener on port
 * 0), readiness from STARTED, worker PIDs from WORKER_STARTED.
 *
 * Stopping is by PID only: stop() sends SIGTERM to this child and waits for its exit (SIGKILL
 * after a deadline); kill() sends any signal to it. Worker PIDs are reported so a test can
 * check that they leave by themselves when their master is gone.
 */
import { withNodeFlags } from '../../lib/app/node-flags.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'smol-toml';

const SLUICE = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface ChildLogLine {
  event?: string;
  pid?: number;
  [key: string]: unknown;
}

export interface ChildMaster {
  readonly pid: number;
  readonly dir: string;
  /** every parsed JSON line from stdout, in order */
  readonly lines: ChildLogLine[];
  /** raw stdout and stderr so far */
  stdout(): string;
  stderr(): string;
  /** listener name → port, from LISTENING events */
  port(name: string): number;
  /** PIDs from WORKER_STARTED events so far */
  workerPids(): number[];
  /** resolves with the first line that matches; rejects after timeoutMs or when the child exits */
  waitForLine(match: (l: ChildLogLine) => boolean, timeoutMs: number, what?: string): Promise<ChildLogLine>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after deadlineMs; resolves at exit */
  stop(deadlineMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Writes `config` (a plain object) as the app dir's config.toml. */
export function writeConfig(dir: string, config: Record<string, unknown>): void {
  writeFileSync(path.join(dir, 'config.toml'), stringify(config));
}

/** Config for a child master: loopback, port 0 everywhere, info logs, no DNS off this machine. */
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

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] = prev && typeof prev === 'object' && !Array.isArray(prev) && v && typeof v === 'object' && !Array.isArray(v) ? merge(prev as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** Starts `sluice run -d dir` and waits for STARTED (or fails with what it printed). */
export async function startChildMaster(dir: string, opts: { env?: NodeJS.ProcessEnv; startTimeoutMs?: number } = {}): Promise<ChildMaster> {
  if (!existsSync(path.join(dir, 'config.toml'))) throw new Error('child-master: write config.toml first');
  // the V8 flags the `sluice` script and npm start give (lib/app/node-flags.ts): memory as in production
  const child: ChildProcess = spawn(process.execPath, [...withNodeFlags([]), SLUICE, 'run', '-d', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin' },
  });
  const lines: ChildLogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  child.stdout!.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    out += text;
    partial += text;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!line.trim()) continue;
      try {
        lines.push(JSON.parse(line) as ChildLogLine);
      } catch {
        // not a log line
      }
    }
    notify();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString('utf8');
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      notify();
      resolve({ code, signal });
    });
  });

  const waitForLine = (match: (l: ChildLogLine) => boolean, timeoutMs: number, what = 'log line'): Promise<ChildLogLine> =>
    new Promise((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) {
          finish();
          resolve(found);
        } else if (done) {
          finish();
          reject(new Error(`child-master: exited before ${what}; stderr: ${err.slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`child-master: no ${what} within ${timeoutMs} ms; stderr: ${err.slice(-2000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });

  const pid = child.pid!;
  const handle: ChildMaster = {
    pid,
    dir,
    lines,
    stdout: () => out,
    stderr: () => err,
    port(name) {
      const l = lines.find((x) => x.event === 'LISTENING' && x.listener === name);
      if (!l) throw new Error(`child-master: no listener ${name}`);
      return Number(l.port);
    },
    workerPids: () => lines.filter((l) => l.event === 'WORKER_STARTED').map((l) => Number(l.pid)),
    waitForLine,
    exited,
    kill(signal) {
      if (!done) process.kill(pid, signal);
    },
    async stop(deadlineMs = 20_000) {
      if (!done) {
        process.kill(pid, 'SIGTERM');
        const t = setTimeout(() => {
          if (!done) process.kill(pid, 'SIGKILL');
        }, deadlineMs);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
  };
  await waitForLine((l) => l.event === 'STARTED', opts.startTimeoutMs ?? 20_000, 'STARTED');
  return handle;
}

/** A process that exists and is not a zombie (a dead child not yet reaped by its new parent). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
