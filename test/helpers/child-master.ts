/**
 * Test harness: the whole `sluice run` as a child process, for the fault tests that kill, stop or
 * restart it (F1, F1b, F1c, F7, F8). The child is ours by PID: we stop it with a signal to that
 * PID only, never by name.
 *
 * Readiness comes from the child's own log (JSON lines on stdout): every `LISTENING` line gives a
 * listener's port, `STARTED` means it accepts. The sluice PID is read from the log too, so a
 * wrapper in front of node (strace, setpriv) does not change which process a signal reaches.
 */
import { withNodeFlags } from '../../lib/app/node-flags.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/test/helpers/child-master.js). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SLUICE_BIN = path.join(ROOT, 'dist', 'bin', 'sluice.js');

export interface LogLine {
  /** by name: trace, debug, info, warn, error, fatal */
  level: string;
  pid: number;
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

export interface ChildMaster {
  /** the sluice (node) process; equals spawnPid unless a wrapper runs in front of it */
  pid: number;
  spawnPid: number;
  /** listener name → port */
  ports: Record<string, number>;
  smtpPort: number;
  apiPort: number;
  /** every JSON log line so far (non-JSON stdout lines land in `rawStdout`) */
  lines: LogLine[];
  rawStdout: string[];
  stderr(): string;
  /** resolves when the spawned process has exited */
  exited: Promise<Exit>;
  /** from spawn to the STARTED line */
  startMs: number;
  /** false once the spawned process has exited */
  readonly running: boolean;
  /** signals the sluice PID; does nothing once it has exited (its PID may belong to another by then) */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then wait for the exit (SIGKILL after `timeoutMs`) */
  stop(timeoutMs?: number): Promise<Exit>;
  /** waits for the exit without signalling; rejects (after a SIGKILL) when it takes over `timeoutMs` */
  waitExit(timeoutMs: number): Promise<Exit>;
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

/** A fresh app dir under os.tmpdir() with a config.toml for tests. */
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
    // acceptance only unless a test asks for a worker, and never a DNS query off this machine
    table('zones.default', { processes: 0 }, opts.zone),
    '[dns]\nservers = ["127.0.0.1:9"]',
    opts.extraToml ?? '',
  ].join('\n');
  writeFileSync(path.join(dir, 'config.toml'), toml + '\n');
}

/** Our environment minus SLUICE_… variables: the child reads its config from the app dir only. */
function childEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SLUICE_')) env[k] = v;
  return { ...env, ...extra };
}

export interface SpawnOptions {
  /** a command to run in front of node (["strace", "-f", …] or ["setpriv", …]) */
  wrap?: string[];
  env?: NodeJS.ProcessEnv;
  /** how long to wait for STARTED */
  readyTimeoutMs?: number;
}

function spawnSluice(appDir: string, opts: SpawnOptions): ChildProcess {
  // the V8 flags the `sluice` script and npm start give (lib/app/node-flags.ts): memory as in production
  const argv = [...(opts.wrap ?? []), process.execPath, ...withNodeFlags([]), SLUICE_BIN, 'run', '-d', appDir];
  return spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env: childEnv(opts.env), stdio: ['ignore', 'pipe', 'pipe'] });
}

function exitOf(child: ChildProcess): Promise<Exit> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

/** Starts `sluice run -d appDir` and resolves once it logged STARTED (rejects if it exits first). */
export function startChild(appDir: string, opts: SpawnOptions = {}): Promise<ChildMaster> {
  const t0 = Date.now();
  const child = spawnSluice(appDir, opts);
  const exited = exitOf(child);
  const lines: LogLine[] = [];
  const rawStdout: string[] = [];
  const ports: Record<string, number> = {};
  let stderr = '';
  let pid = 0;
  let partial = '';

  return new Promise<ChildMaster>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) {
        // the sluice PID first: killing only a wrapper (strace) could leave node running
        if (pid && pid !== child.pid) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        child.kill('SIGKILL');
      }
      reject(new Error(`sluice did not start: ${why}\nstderr: ${stderr.trim()}\nstdout: ${rawStdout.concat(lines.map((l) => JSON.stringify(l))).slice(-5).join('\n')}`));
    };
    const timer = setTimeout(() => fail(`no STARTED within ${opts.readyTimeoutMs ?? 15_000} ms`), opts.readyTimeoutMs ?? 15_000);

    const handle: ChildMaster = {
      get pid() {
        return pid;
      },
      spawnPid: child.pid ?? 0,
      ports,
      get smtpPort() {
        return ports.smtp ?? 0;
      },
      get apiPort() {
        return ports.api ?? 0;
      },
      lines,
      rawStdout,
      stderr: () => stderr,
      exited,
      startMs: 0,
      get running() {
        return child.exitCode === null && child.signalCode === null;
      },
      kill(signal) {
        // only ever the one PID this harness started (or the sluice PID its own log named)
        const target = pid || child.pid;
        if (!target || !handle.running) return;
        try {
          process.kill(target, signal);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
        }
      },
      async stop(timeoutMs = 40_000) {
        if (!handle.running) return exited;
        handle.kill('SIGTERM');
        return handle.waitExit(timeoutMs);
      },
      async waitExit(timeoutMs) {
        let t: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((r) => (t = setTimeout(() => r('late'), timeoutMs)));
        const first = await Promise.race([exited, late]);
        clearTimeout(t);
        if (first === 'late') {
          handle.kill('SIGKILL');
          if (child.pid && child.pid !== pid) child.kill('SIGKILL');
          await exited;
          throw new Error(`sluice (pid ${pid}) did not exit within ${timeoutMs} ms`);
        }
        return first;
      },
    };

    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => (stderr += d));
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        const text = partial.slice(0, nl);
        partial = partial.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          rawStdout.push(text);
          continue;
        }
        lines.push(line);
        if (!pid && typeof line.pid === 'number') pid = line.pid;
        if (line.event === 'LISTENING' && typeof line.listener === 'string' && typeof line.port === 'number') {
          ports[line.listener] = line.port;
        }
        if (line.event === 'STARTED' && !settled) {
          settled = true;
          clearTimeout(timer);
          handle.startMs = Date.now() - t0;
          resolve(handle);
        }
      }
    });
    void exited.then((e) => fail(`exited with code ${e.code} signal ${e.signal}`));
  });
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
export async function runExpectingExit(appDir: string, opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
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

function streamEnd(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve) => {
    if ((stream as unknown as { readableEnded: boolean }).readableEnded) return resolve();
    stream.once('end', () => resolve());
    stream.once('close', () => resolve());
  });
}
