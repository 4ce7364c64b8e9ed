/**
 * Pieces the benchmarks share (accept.ts, relay.ts, inbound.ts): free ports on 127.0.0.1, waiting
 * for an SMTP greeting, running Postfix's smtp-source (and the ceiling: smtp-source into
 * smtp-sink), stopping our own children by PID, and the kernel's view of a process (peak RSS,
 * CPU time, its children), the table they print and the checks before a run. Kept here so the
 * benches measure the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createServer } from 'node:net';
import { waitForGreeting as waitForSmtpGreeting } from '../test/helpers/sluice-child.js';
import { pssBytes, pssByKind, type PssKind } from './pss.js';


export const SMTP_SOURCE = '/usr/sbin/smtp-source';
export const SMTP_SINK = '/usr/sbin/smtp-sink';
export const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;
export const STOP_TIMEOUT_MS = 15_000;

export function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

export function log(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** ports freePort has handed out in this process: the kernel may offer a closed one again at once */
const handedOut = new Set<number>();

/**
 * A port that was free a moment ago (listen on 0, read it, close) and that this process has not
 * been given before: three calls in a row could get the same port back (seen once in ~40 relay
 * runs: the config named one port for two listeners and Sluice refused it).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await anyFreePort();
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port on 127.0.0.1 that was not handed out before (20 tries)');
}

function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until `child` answers on `port` with an SMTP greeting (it dying or time running out fails). */
function waitForGreeting(port: number, child: ChildProcess, what: string): Promise<void> {
  return waitForSmtpGreeting(port, READY_TIMEOUT_MS, () => child.exitCode !== null || child.signalCode !== null).catch((err: Error) => {
    throw new Error(`${what}: ${err.message}`);
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if it does not go within the deadline. Only ever our own child. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited(child);
  clearTimeout(timer);
}

/**
 * Runs smtp-source with `args` against HOST:`port`; resolves with its run time in seconds once it
 * exits 0, from its start to its exit (right after the last 250 and its QUIT). Killed, and the
 * run failed, after `timeoutMs`.
 */
export async function runSmtpSource(args: string[], port: number, timeoutMs: number): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(SMTP_SOURCE, [...args, `${HOST}:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, timeoutMs);
  await exited(child);
  clearTimeout(timer);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (timedOut) throw new Error(`smtp-source did not finish within ${timeoutMs} ms`);
  if (child.exitCode !== 0) throw new Error(`smtp-source exited with ${child.exitCode ?? child.signalCode}: ${output.trim()}`);
  return seconds;
}

/** The ceiling of this machine for a load: smtp-source with `args` into smtp-sink; its run time in seconds. */
export async function sinkSeconds(args: string[], timeoutMs: number): Promise<number> {
  const port = await freePort();
  const sink = spawn(SMTP_SINK, ['-u', 'nobody', `${HOST}:${port}`, '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await waitForGreeting(port, sink, 'smtp-sink');
    return await runSmtpSource(args, port, timeoutMs);
  } finally {
    await stopChild(sink);
  }
}

/** Kernel's view of a process: peak resident set (VmHWM) and CPU time used so far. */
export function procStats(pid: number): { peakRssBytes: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
  // fields 14 and 15 of /proc/<pid>/stat (after the ")" of the command name) are utime, stime
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { peakRssBytes: Number(hwm?.[1] ?? 0) * 1024, cpuMs: (ticks * 1000) / 100 };
}

/** CPU time (user + system, ms) of each thread of `pid`, by thread id; the main thread's id is the pid. */
export function threadCpuMs(pid: number): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / 100);
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return cpu;
}

/**
 * What each thread used between two `threadCpuMs` samples: the main thread's CPU, and that of the
 * busiest other thread (a worker thread, one of LevelDB's or libuv's).
 */
export function threadCpuSplit(pid: number, before: Map<number, number>, after: Map<number, number>): { mainMs: number; busiestOtherMs: number } {
  let busiestOtherMs = 0;
  for (const [tid, ms] of after) if (tid !== pid) busiestOtherMs = Math.max(busiestOtherMs, ms - (before.get(tid) ?? 0));
  return { mainMs: (after.get(pid) ?? 0) - (before.get(pid) ?? 0), busiestOtherMs };
}

/** The PIDs of `pid`'s children (the per-task children lists of /proc, else a scan of parent PIDs). */
export function childPids(pid: number): number[] {
  const tasksDir = `/proc/${pid}/task`;
  try {
    const tasks = readdirSync(tasksDir);
    if (tasks.length && existsSync(`${tasksDir}/${tasks[0]}/children`)) {
      return tasks.flatMap((t) => readFileSync(`${tasksDir}/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
    }
  } catch {
    return [];
  }
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // field 4 (the parent PID) is the second after the ")" of the command name
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/**
 * Writes the app dir's config.toml the benchmarks share: loopback listeners on the given ports,
 * the queue inside the app dir, DNS pointed at a dead loopback port (nothing may leave the
 * machine), the inbound receiver on `inboundPort` (off without one: the outbound benches measure
 * the MTA alone), then `extra` lines (the zone and delivery settings of each bench).
 */
export function writeBenchConfig(dir: string, o: { logLevel: string; smtpPort: number; apiPort: number; channelPort: number; inboundPort?: number }, extra: string[]): void {
  const inbound = o.inboundPort === undefined ? ['enabled = false'] : ['enabled = true', `host = "${HOST}"`, `port = ${o.inboundPort}`, 'path = "inbox"'];
  writeFileSync(
    path.join(dir, 'config.toml'),
    [
      'hostname = "sluice.test"',
      '[log]',
      `level = "${o.logLevel}"`,
      '[smtp]',
      `host = "${HOST}"`,
      `port = ${o.smtpPort}`,
      '[api]',
      `host = "${HOST}"`,
      `port = ${o.apiPort}`,
      '[channel]',
      `host = "${HOST}"`,
      `port = ${o.channelPort}`,
      '[queue]',
      'path = "queue"',
      '[inbound]',
      ...inbound,
      '[dns]',
      'servers = ["127.0.0.1:9"]',
      ...extra,
      '',
    ].join('\n'),
  );
}

/** Rows as a Markdown table, each column as wide as its widest cell. */
export function markdownTable(head: string[], lines: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')} |`;
  return [fmt(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n');
}

/** Whether smtp-source, smtp-sink and the Sluice build are there (says what is missing if not). */
export function toolsPresent(sluiceBin: string): boolean {
  for (const tool of [SMTP_SOURCE, SMTP_SINK, sluiceBin]) {
    if (!existsSync(tool)) {
      log(`bench: ${tool} is missing (${tool === sluiceBin ? 'run npm run build' : 'apt-get install postfix'})`);
      return false;
    }
  }
  return true;
}

/** The cases BENCH_CASES names (all when it is unset); undefined, said, when it names none. */
export function pickCases<C extends { name: string }>(all: C[]): C[] | undefined {
  const wanted = process.env.BENCH_CASES?.split(',').map((s) => s.trim()).filter(Boolean);
  const cases = wanted?.length ? all.filter((c) => wanted.includes(c.name)) : all;
  if (cases.length) return cases;
  log(`bench: no case matches BENCH_CASES; cases are ${all.map((c) => c.name).join(', ')}`);
  return undefined;
}

/** Resident set now (VmRSS) of a process, 0 when it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** smtp-sink with its running counter read from stdout; resolves waiters when `mesg` reaches a count. */
export class CountingSink {
  count = 0;
  /** when `count` first reached the awaited number (hrtime ns) */
  reachedAt = 0n;
  private tail = '';
  private waiter?: { n: number; resolve: () => void };

  private constructor(readonly port: number, readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => this.onOutput(d.toString('latin1')));
  }

  static async start(): Promise<CountingSink> {
    const port = await freePort();
    const child = spawn(SMTP_SINK, ['-c', '-u', 'nobody', `${HOST}:${port}`, '256'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const sink = new CountingSink(port, child);
    try {
      await waitForGreeting(port, child, 'smtp-sink');
    } catch (err) {
      await stopChild(child);
      throw err;
    }
    return sink;
  }

  private onOutput(text: string): void {
    // keep the last partial record: a number may be split across chunks
    const all = this.tail + text;
    let last = -1;
    for (const m of all.matchAll(/mesg=(\d+)\r/g)) last = Number(m[1]);
    this.tail = all.slice(Math.max(0, all.lastIndexOf('\r') + 1));
    if (last > this.count) this.count = last;
    if (this.waiter && this.count >= this.waiter.n) {
      this.reachedAt = process.hrtime.bigint();
      this.waiter.resolve();
      this.waiter = undefined;
    }
  }

  /** Resolves when `n` messages have arrived; rejects after `timeoutMs` or if the sink exits. */
  waitFor(n: number, timeoutMs: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`${this.count} of ${n} messages arrived at smtp-sink within ${timeoutMs} ms`));
      }, timeoutMs);
      void exited(this.child).then(() => {
        clearTimeout(timer);
        reject(new Error('smtp-sink exited'));
      });
      this.waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
    });
  }

  stop(): Promise<void> {
    return stopChild(this.child);
  }
}


/** One process's share of the highest PSS sample. */
export interface PssShare {
  pid: number;
  master: boolean;
  bytes: number;
  /** by kind of mapping (pss.ts), when the watch reads smaps */
  kinds?: Record<PssKind, number>;
}

/** Peak RSS and CPU of the master and every worker seen during the run (a PID keeps its highest reading). */
export class ProcessWatch {
  private readonly peaks = new Map<number, { peakRssBytes: number; cpuMs: number }>();
  private readonly baseCpuMs = new Map<number, number>();
  /** the highest sum of the processes' PSS seen in one sample */
  peakPssBytes = 0;
  /** each process's part of that sample */
  peakPss: PssShare[] = [];

  /** `detail`: read each process's smaps at every sample, for the kinds of the peak (a few ms each) */
  constructor(
    private readonly masterPid: number,
    private readonly detail = false,
  ) {}

  pids(): number[] {
    return [this.masterPid, ...childPids(this.masterPid)];
  }

  sample(): void {
    let pss = 0;
    const shares: PssShare[] = [];
    for (const pid of this.pids()) {
      const kinds = this.detail ? pssByKind(pid) : undefined;
      const bytes = kinds ? Object.values(kinds).reduce((a, b) => a + b, 0) : pssBytes(pid);
      pss += bytes;
      shares.push({ pid, master: pid === this.masterPid, bytes, ...(kinds ? { kinds } : {}) });
      try {
        const s = procStats(pid);
        if (!this.baseCpuMs.has(pid)) this.baseCpuMs.set(pid, 0);
        const prev = this.peaks.get(pid);
        this.peaks.set(pid, { peakRssBytes: Math.max(prev?.peakRssBytes ?? 0, s.peakRssBytes), cpuMs: s.cpuMs });
      } catch {
        // exited between the listing and the read: its last sample stands
      }
    }
    if (pss > this.peakPssBytes) {
      this.peakPssBytes = pss;
      this.peakPss = shares;
    }
  }

  /** Forgets CPU so far (start-up), keeps the PIDs. */
  resetCpu(): void {
    this.sample();
    for (const [pid, s] of this.peaks) this.baseCpuMs.set(pid, s.cpuMs);
  }

  totals(): { peakRssBytes: number; masterPeakRssBytes: number; workers: number; cpuMs: number } {
    let peakRssBytes = 0;
    let cpuMs = 0;
    for (const [pid, s] of this.peaks) {
      peakRssBytes += s.peakRssBytes;
      cpuMs += s.cpuMs - (this.baseCpuMs.get(pid) ?? 0);
    }
    return { peakRssBytes, masterPeakRssBytes: this.peaks.get(this.masterPid)?.peakRssBytes ?? 0, workers: this.peaks.size - 1, cpuMs };
  }
}

