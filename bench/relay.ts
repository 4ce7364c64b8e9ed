/**
 * The relay benchmark (issue #3): end-to-end throughput of Sluice as a relay. Postfix's
 * smtp-source submits to Sluice (a child process, `sluice run`), whose delivery workers relay every
 * message over SMTP to Postfix's smtp-sink through a static route of the default zone. The rate is
 * messages per second from the start of smtp-source to the last arrival at the sink; beside it,
 * from the same run, smtp-source straight into smtp-sink (the ceiling, timed the same way).
 * Memory: the peak resident set (VmHWM) of the master plus each of its workers, summed, and the
 * highest sum of their PSS in one sample (shared pages counted once; issue #13 asks ≤ 120 MB).
 *
 * Cases: 2 KB and 100 KB messages, 20 concurrent sessions, one message per connection. Targets:
 * at least 0.12 of the ceiling at 2 KB and 0.25 at 100 KB, all Sluice processes under 250 MB.
 *
 * Arrivals are counted from smtp-sink's own counter (`-c`: it writes "sess=N quit=N mesg=N\r" to
 * stdout as things happen; mesg is the number of finished DATA transactions).
 *
 * Environment: BENCH_MESSAGES (default 5000), BENCH_CASES (e.g. "2k"), BENCH_PROCESSES (1: on
 * two cores one worker process does best, bench/README.md), BENCH_CONNECTIONS (20 per process), BENCH_PER_DOMAIN (connectionsPerDomain, default processes ×
 * connections: every message goes to one domain), BENCH_SESSION_IDLE (delivery.sessionIdle, "5s"),
 * BENCH_SLUICE (another build's dist/bin/sluice.js), BENCH_LOG_LEVEL (warn), BENCH_CPU_PROF (a
 * directory: the master and every worker run under `node --cpu-prof`, one profile each per case),
 * BENCH_MEM_DETAIL=1 (each process's part of the peak PSS by kind of mapping: V8 heap and thread
 * arenas, the main malloc heap, code, LevelDB's files; bench/pss.ts).
 *
 * Everything is on 127.0.0.1 with ports found free, every wait is bounded, children are stopped
 * by PID and the temporary app dir is removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CountingSink, HOST, ProcessWatch, freePort, log, markdownTable, pickCases, positiveInt, runSmtpSource, STOP_TIMEOUT_MS, toolsPresent, writeBenchConfig, type PssShare } from './tools.js';
import { PSS_KINDS } from './pss.js';
import { startSluice, type SluiceChild } from '../test/helpers/sluice-child.js';

const SESSIONS = 20;
const MESSAGES = positiveInt(process.env.BENCH_MESSAGES, 5000);
const PROCESSES = positiveInt(process.env.BENCH_PROCESSES, 1);
const CONNECTIONS = positiveInt(process.env.BENCH_CONNECTIONS, 20);
const PER_DOMAIN = positiveInt(process.env.BENCH_PER_DOMAIN, PROCESSES * CONNECTIONS);
const SESSION_IDLE = process.env.BENCH_SESSION_IDLE ?? '5s';
/** node options for the master (and, through its execArgv, the workers): to try V8 flags against the defaults */
const EXTRA_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';
/** read every process's smaps at each sample and say what the peak PSS was made of */
const MEM_DETAIL = process.env.BENCH_MEM_DETAIL === '1';
/** A run whose last message has not arrived by then fails (no run hangs the bench). */
const RUN_TIMEOUT_MS = Math.max(60_000, MESSAGES * 60);
const WORKERS_TIMEOUT_MS = 20_000;
/** How often the memory of master and workers is read during a run (VmHWM is a peak anyway; this catches workers that exit). */
const SAMPLE_MS = 250;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sluiceBin = process.env.BENCH_SLUICE ? path.resolve(process.env.BENCH_SLUICE) : path.join(root, 'dist', 'bin', 'sluice.js');

interface Case {
  name: string;
  sizeBytes: number;
  target: number;
}

const ALL_CASES: Case[] = [
  { name: '2k', sizeBytes: 2048, target: 0.12 },
  { name: '100k', sizeBytes: 102_400, target: 0.25 },
];
const RSS_LIMIT_BYTES = 250 * 2 ** 20;

interface RelayRun {
  rate: number;
  peakRssBytes: number;
  /** the highest sum of the processes' PSS in one sample (shared pages counted once) */
  peakPssBytes: number;
  /** each process's part of it */
  peakPss: PssShare[];
  masterPeakRssBytes: number;
  workers: number;
  cpuMs: number;
  arrived: number;
}

/** Runs smtp-source against `port`; resolves when it exits 0 (its own deadline: RUN_TIMEOUT_MS). */
async function runSource(port: number, c: Case): Promise<void> {
  await runSmtpSource(['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(c.sizeBytes), '-f', 's@src.test', '-t', 'r@dest.test', '-M', 'client.test'], port, RUN_TIMEOUT_MS);
}

/** smtp-source → sink → arrivals; messages/s from the start of smtp-source to the last arrival. */
async function timedRun(sink: CountingSink, submitPort: number, c: Case): Promise<number> {
  const started = process.hrtime.bigint();
  const arrived = sink.waitFor(MESSAGES, RUN_TIMEOUT_MS);
  // a failed source fails the run at once; the arrival wait has its own deadline
  await Promise.all([runSource(submitPort, c), arrived]);
  return MESSAGES / (Number(sink.reachedAt - started) / 1e9);
}

async function runDirect(c: Case): Promise<number> {
  const sink = await CountingSink.start();
  try {
    return await timedRun(sink, sink.port, c);
  } finally {
    await sink.stop();
  }
}

async function runRelay(c: Case): Promise<RelayRun> {
  const sink = await CountingSink.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-relay-'));
  let sluice: SluiceChild | undefined;
  try {
    const smtpPort = await freePort();
    const apiPort = await freePort();
    const channelPort = await freePort();
    writeBenchConfig(dir, { logLevel: LOG_LEVEL, smtpPort, apiPort, channelPort }, [
      '[delivery]',
      `sessionIdle = "${SESSION_IDLE}"`,
      '[zones.default]',
      `processes = ${PROCESSES}`,
      `connections = ${CONNECTIONS}`,
      `connectionsPerDomain = ${PER_DOMAIN}`,
      'tls = "none"',
      `route = { host = "${HOST}", port = ${sink.port} }`,
    ]);
    // workers are forked with the master's execArgv, so each process leaves its own profile
    const profDir = process.env.BENCH_CPU_PROF;
    const nodeArgs = [...EXTRA_NODE_ARGS, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir, c.name)}`] : [])];
    sluice = await startSluice(dir, { bin: sluiceBin, nodeArgs, readyOnGreeting: smtpPort });
    const watch = new ProcessWatch(sluice.pid, MEM_DETAIL);
    const deadline = Date.now() + WORKERS_TIMEOUT_MS;
    while (watch.pids().length < 1 + PROCESSES) {
      if (Date.now() > deadline) throw new Error(`sluice did not start ${PROCESSES} workers within ${WORKERS_TIMEOUT_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    watch.resetCpu();
    const sampler = setInterval(() => watch.sample(), SAMPLE_MS);
    let rate: number;
    try {
      rate = await timedRun(sink, smtpPort, c);
    } finally {
      clearInterval(sampler);
    }
    watch.sample();
    return { rate, ...watch.totals(), peakPssBytes: watch.peakPssBytes, peakPss: watch.peakPss, arrived: sink.count };
  } catch (err) {
    if (sluice?.stderr().trim()) log(`sluice stderr: ${sluice.stderr().trim().slice(-4000)}`);
    throw err;
  } finally {
    await sluice?.stop(STOP_TIMEOUT_MS);
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Row {
  c: Case;
  ceiling: number;
  relay: RelayRun;
}

function table(rows: Row[]): string {
  const head = ['case', 'direct msg/s', 'relay msg/s', 'ratio', 'target', 'peak RSS MB (master+workers)', 'peak PSS MB, all (master+workers)', 'CPU ms/msg'];
  const lines = rows.map(({ c, ceiling, relay }) => {
    const ratio = relay.rate / ceiling;
    const mb = (n: number) => (n / 2 ** 20).toFixed(0);
    return [
      c.name,
      ceiling.toFixed(0),
      relay.rate.toFixed(0),
      ratio.toFixed(3),
      `${c.target} ${ratio >= c.target ? 'met' : 'MISSED'}`,
      `${mb(relay.peakRssBytes)} (${mb(relay.masterPeakRssBytes)}+${relay.workers}w)${relay.peakRssBytes < RSS_LIMIT_BYTES ? '' : ' OVER'}`,
      `${mb(relay.peakPssBytes)} (${relay.peakPss.map((p) => mb(p.bytes)).join('+')})`,
      (relay.cpuMs / MESSAGES).toFixed(2),
    ];
  });
  return markdownTable(head, lines);
}

async function main(): Promise<number> {
  if (!toolsPresent(sluiceBin)) return 1;
  const cases = pickCases(ALL_CASES);
  if (!cases) return 1;
  const settings = `processes ${PROCESSES}, connections ${CONNECTIONS}, connectionsPerDomain ${PER_DOMAIN}, sessionIdle ${SESSION_IDLE}`;
  log(`bench relay: ${MESSAGES} messages per run, ${SESSIONS} sessions, fsync on, ${settings}, log level ${LOG_LEVEL}`);
  const rows: Row[] = [];
  let failed = false;
  for (const c of cases) {
    try {
      const ceiling = await runDirect(c);
      log(`  ${c.name}: smtp-source → smtp-sink ${ceiling.toFixed(0)} msg/s`);
      const relay = await runRelay(c);
      log(`  ${c.name}: smtp-source → sluice → smtp-sink ${relay.rate.toFixed(0)} msg/s, ${relay.arrived} arrived`);
      rows.push({ c, ceiling, relay });
      if (relay.peakRssBytes >= RSS_LIMIT_BYTES) failed = true;
    } catch (err) {
      failed = true;
      log(`bench relay: case ${c.name} failed: ${(err as Error).message}`);
    }
  }
  if (MEM_DETAIL) {
    const mb = (n: number) => (n / 2 ** 20).toFixed(1);
    for (const { c, relay } of rows) {
      for (const p of relay.peakPss) {
        const kinds = p.kinds ? PSS_KINDS.map((k) => `${k} ${mb(p.kinds![k])}`).join(', ') : '';
        log(`  ${c.name} peak PSS, ${p.master ? 'master' : `worker ${p.pid}`}: ${mb(p.bytes)} MB (${kinds})`);
      }
    }
  }
  process.stdout.write(`\nRelay, ${MESSAGES} messages, ${SESSIONS} sessions, fsync on, ${settings} (${new Date().toISOString()})\n${table(rows)}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
