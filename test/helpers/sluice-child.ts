/**
 * The one way tests start the whole `sluice run` as a child process: for the tests that kill,
 * stop, restart or signal the master, read what the whole process tree prints, or measure the
 * master's own process (RSS, event-loop lag). The app dir comes from app-dir.ts.
 *
 * The child runs with the V8 flags and the environment every real start has (lib/app/node-flags.ts:
 * the `sluice` script, npm start, the unit), so its memory is as in production, and with our
 * environment minus SLUICE_… variables, so it reads its config from the app dir only.
 *
 * Its stdout is JSON log lines (workers inherit the master's stdout, so theirs come too), parsed
 * as they arrive: every LISTENING line gives a listener's port, STARTED means it accepts,
 * WORKER_STARTED names a worker's PID. The sluice PID is read from the log too, so a wrapper in
 * front of node (strace, setpriv) does not change which process a signal reaches.
 *
 * The child is ours by PID: it is stopped with a signal to that PID only, never by name; a child
 * that fails to start is killed before the error is thrown, so it never outlives its test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withNodeFlags, withProcessEnv } from '../../lib/app/node-flags.js';
import { writeConfig } from './app-dir.js';
import { tempDir, testOverrides } from './test-config.js';

/** The repository root (this file runs as dist/test/helpers/sluice-child.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SLUICE_BIN = path.join(ROOT, 'dist', 'bin', 'sluice.js');
const LOOP_PROBE = new URL('./loop-probe.js', import.meta.url).href;

export interface LogLine {
  /** by name: trace, debug, info, warn, error, fatal */
  level?: string;
  pid?: number;
  event?: string;
  msg?: string;
  [key: string]: unknown;
}

/** An error or fatal line. */
export const isError = (l: LogLine): boolean => l.level === 'error' || l.level === 'fatal';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** The child's event-loop delay since the last reset, in ms (loop-probe.ts). */
export interface LoopLag {
  count: number;
  p50: number;
  p99: number;
  max: number;
  resets: number;
}

export interface SluiceChild {
  /** the sluice (node) process; equals spawnPid unless a wrapper runs in front of it */
  readonly pid: number;
  readonly spawnPid: number;
  readonly dir: string;
  /** listener name → port, from LISTENING lines */
  readonly ports: Record<string, number>;
  /** the port of a listener by name ("smtp", "api", "inbound", "smtp.interfaces.NAME"); throws if none */
  port(name: string): number;
  readonly smtpPort: number;
  readonly apiPort: number;
  /** every JSON log line so far, in order (non-JSON stdout lines land in `rawStdout`) */
  readonly lines: LogLine[];
  readonly rawStdout: string[];
  stdout(): string;
  stderr(): string;
  /** PIDs from WORKER_STARTED lines so far */
  workerPids(): number[];
  /** when a line arrived (performance.now()), for benchmarks that time the child's phases */
  seenAt(line: LogLine): number | undefined;
  /** the first line that matches; rejects after `timeoutMs` or when the child exits first */
  waitForLine(match: (l: LogLine) => boolean, timeoutMs: number, what?: string): Promise<LogLine>;
  /** resolves when the spawned process has exited */
  readonly exited: Promise<Exit>;
  /** from spawn to the STARTED line */
  readonly startMs: number;
  /** false once the spawned process has exited */
  readonly running: boolean;
  /** signals the sluice PID; does nothing once it has exited (its PID may belong to another by then) */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then the exit; SIGKILL after `timeoutMs` (the Exit then says so) */
  stop(timeoutMs?: number): Promise<Exit>;
  /** waits for the exit without signalling; rejects (after a SIGKILL) when it takes over `timeoutMs` */
  waitExit(timeoutMs: number): Promise<Exit>;
  /** the child's event-loop lag (start it with `loopProbe`) */
  loopLag(): LoopLag;
  /** starts the lag measurement over (SIGUSR2 to the probe) */
  resetLoopLag(): Promise<void>;
}

export interface StartOptions {
  /** a command to run in front of node (["strace", "-f", …] or ["setpriv", …]) */
  wrap?: string[];
  /** added to the child's environment */
  env?: NodeJS.ProcessEnv;
  /** how long to wait for STARTED (default 20 s) */
  readyTimeoutMs?: number;
  /** load loop-probe.ts into the child, for loopLag() */
  loopProbe?: boolean;
  /** the sluice.js to run (default: this build's; a benchmark may compare another build) */
  bin?: string;
  /** more node flags (e.g. --cpu-prof for a benchmark's profile) */
  nodeArgs?: string[];
  /**
   * A benchmark's start: stdout is not read (its log level is low, and parsing lines would cost
   * the measuring process CPU), and the child is ready when this SMTP port greets with 220.
   * `lines`, `ports` and `workerPids()` stay empty unless `readLog` is set.
   */
  readyOnGreeting?: number;
  /** read the log lines even with `readyOnGreeting` (default: only without it) */
  readLog?: boolean;
}

/** Our environment minus SLUICE_… variables (the runner sets some; the child would read them as config). */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  return { ...env, ...extra };
}

function spawnSluice(appDir: string, opts: StartOptions, probeFile?: string): ChildProcess {
  const nodeArgs = withNodeFlags([...(probeFile ? ['--import', LOOP_PROBE] : []), ...(opts.nodeArgs ?? [])]);
  const argv = [...(opts.wrap ?? []), process.execPath, ...nodeArgs, opts.bin ?? SLUICE_BIN, 'run', '-d', appDir];
  const env = withProcessEnv(childEnv({ ...opts.env, ...(probeFile ? { LOOP_PROBE_FILE: probeFile } : {}) }));
  const readLog = opts.readLog ?? !opts.readyOnGreeting;
  return spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env, stdio: ['ignore', readLog ? 'pipe' : 'ignore', 'pipe'] });
}

/**
 * Resolves once something on 127.0.0.1:`port` greets with 220; rejects when `timeoutMs` passes or
 * `gone()` says the process that should answer has exited.
 */
export async function waitForGreeting(port: number, timeoutMs: number, gone: () => boolean = () => false): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    if (gone()) throw new Error(`the process exited before 127.0.0.1:${port} greeted`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, '127.0.0.1');
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.setTimeout(1000, () => done(false));
      sock.once('error', () => done(false));
      sock.once('data', (d) => {
        sock.end('QUIT\r\n');
        done(d.toString('latin1').startsWith('220'));
      });
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, Math.min(25 * (attempt + 1), 250)));
  }
  throw new Error(`nothing greeted on 127.0.0.1:${port} within ${timeoutMs} ms`);
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Starts `sluice run -d appDir` and resolves once it logged STARTED (rejects if it exits first). */
export async function startSluice(appDir: string, opts: StartOptions = {}): Promise<SluiceChild> {
  if (!existsSync(path.join(appDir, 'config.toml'))) throw new Error(`startSluice: ${appDir} has no config.toml`);
  const t0 = Date.now();
  const probeFile = opts.loopProbe ? path.join(appDir, 'loop-probe.json') : undefined;
  const child = spawnSluice(appDir, opts, probeFile);
  const exited = exitOf(child);
  const lines: LogLine[] = [];
  const arrivals = new WeakMap<LogLine, number>();
  const rawStdout: string[] = [];
  const ports: Record<string, number> = {};
  const waiters = new Set<() => void>();
  const notify = () => {
    for (const w of [...waiters]) w();
  };
  let stdout = '';
  let stderr = '';
  let pid = 0;
  let partial = '';
  let startMs = 0;
  let done = false;
  void exited.then(() => {
    done = true;
    notify();
  });

  const running = () => child.exitCode === null && child.signalCode === null;
  const kill = (signal: NodeJS.Signals) => {
    // only ever the one PID this harness started (or the sluice PID its own log named)
    const target = pid || child.pid;
    if (!target || !running()) return;
    try {
      process.kill(target, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  const killAll = () => {
    kill('SIGKILL');
    // a wrapper (strace) in front of node: it goes too
    if (child.pid && child.pid !== pid && running()) child.kill('SIGKILL');
  };
  const waitForLine = (match: (l: LogLine) => boolean, timeoutMs: number, what = 'log line'): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const finish = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const check = () => {
        const found = lines.find(match);
        if (found) {
          finish();
          resolve(found);
        } else if (done) {
          finish();
          reject(new Error(`sluice exited before ${what}\nstderr: ${stderr.slice(-2000)}\nstdout: ${stdout.slice(-1000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`sluice: no ${what} within ${timeoutMs} ms\nstderr: ${stderr.slice(-2000)}\nstdout: ${stdout.slice(-1000)}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  const waitExit = async (timeoutMs: number): Promise<Exit> => {
    let t: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (t = setTimeout(() => r('late'), timeoutMs)));
    const first = await Promise.race([exited, late]);
    clearTimeout(t);
    if (first !== 'late') return first;
    killAll();
    await exited;
    throw new Error(`sluice (pid ${pid}) did not exit within ${timeoutMs} ms`);
  };
  const loopLag = (): LoopLag => {
    if (!probeFile || !existsSync(probeFile)) throw new Error('start the child with { loopProbe: true }');
    return JSON.parse(readFileSync(probeFile, 'utf8')) as LoopLag;
  };

  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    partial += d;
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      const text = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      if (!text.trim()) continue;
      let line: LogLine;
      try {
        line = JSON.parse(text) as LogLine;
      } catch {
        rawStdout.push(text);
        continue;
      }
      lines.push(line);
      arrivals.set(line, performance.now());
      if (!pid && typeof line.pid === 'number') pid = line.pid;
      if (line.event === 'LISTENING' && typeof line.listener === 'string' && typeof line.port === 'number') ports[line.listener] = line.port;
      if (line.event === 'STARTED' && !startMs) startMs = Date.now() - t0;
    }
    notify();
  });

  const handle: SluiceChild = {
    get pid() {
      return pid || child.pid || 0;
    },
    spawnPid: child.pid ?? 0,
    dir: appDir,
    ports,
    port(name) {
      const p = ports[name];
      if (p === undefined) throw new Error(`no listener ${name} (have ${Object.keys(ports).join(', ')})`);
      return p;
    },
    get smtpPort() {
      return ports.smtp ?? 0;
    },
    get apiPort() {
      return ports.api ?? 0;
    },
    lines,
    rawStdout,
    stdout: () => stdout,
    stderr: () => stderr,
    workerPids: () => lines.filter((l) => l.event === 'WORKER_STARTED').map((l) => Number(l.workerPid)),
    seenAt: (line) => arrivals.get(line),
    waitForLine,
    exited,
    get startMs() {
      return startMs;
    },
    get running() {
      return running();
    },
    kill,
    async stop(timeoutMs = 40_000) {
      if (!running()) return exited;
      kill('SIGTERM');
      const t = setTimeout(killAll, timeoutMs);
      const exit = await exited;
      clearTimeout(t);
      return exit;
    },
    waitExit,
    loopLag,
    async resetLoopLag() {
      const before = loopLag().resets;
      kill('SIGUSR2');
      const until = Date.now() + 5_000;
      while (loopLag().resets === before) {
        if (Date.now() > until) throw new Error('the loop probe did not reset within 5 s');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };

  try {
    const readyMs = opts.readyTimeoutMs ?? 20_000;
    if (opts.readyOnGreeting) {
      await waitForGreeting(opts.readyOnGreeting, readyMs, () => done).catch((err: Error) => {
        throw new Error(`${err.message}\nstderr: ${stderr.slice(-2000)}`);
      });
      startMs = Date.now() - t0;
    } else {
      await waitForLine((l) => l.event === 'STARTED', readyMs, 'STARTED');
    }
  } catch (err) {
    // a child that never started must not outlive the test (it would hold the runner open)
    killAll();
    await exited;
    throw err;
  }
  return handle;
}

/**
 * Starts Sluice on a fresh app dir whose config is the in-process test config (master.ts: no
 * workers unless asked) plus `overrides`, with info logs. The dir is removed when the test
 * process exits (a test may read the queue after stop()).
 */
export function startSluiceWith(overrides: Record<string, unknown> = {}, opts: StartOptions = {}): Promise<SluiceChild> {
  const dir = tempDir('sluice-child-');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  writeConfig(dir, testOverrides({ log: { level: 'info' }, ...overrides }));
  return startSluice(dir, opts);
}

export interface RunResult extends Exit {
  stderr: string;
  stdout: string;
  elapsedMs: number;
  /** true when we had to kill it because it was still running at the deadline */
  timedOut: boolean;
}

/**
 * Runs `sluice run` expecting it to fail at start: resolves with its exit status and output. If it
 * is still running after `timeoutMs` it is killed (by its PID) and `timedOut` is set.
 */
export async function runExpectingExit(appDir: string, opts: StartOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const t0 = Date.now();
  const child = spawnSluice(appDir, opts);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = exitOf(child);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? 10_000);
  const exit = await exited;
  clearTimeout(timer);
  // the pipes may still hold the last bytes after 'exit'
  await Promise.all([streamEnd(child.stdout!), streamEnd(child.stderr!)]);
  return { ...exit, stdout, stderr, elapsedMs: Date.now() - t0, timedOut };
}

function streamEnd(stream: NodeJS.ReadableStream & { readableEnded?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    if (stream.readableEnded) return resolve();
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
  });
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

/** Resident set size of a process in bytes, from /proc (Linux). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}
