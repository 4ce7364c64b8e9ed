/**
 * The acceptance benchmark (issue #2): how many messages per second Sluice takes in over SMTP,
 * with fsync on, measured from the start of the load until the last 250, beside the ceiling of
 * this machine: Postfix's smtp-source sending the same load to Postfix's smtp-sink, which
 * accepts and throws away. Sluice runs as a child process (`sluice run`), so its CPU and memory
 * are its own; the load generator is the same C program in both rows.
 *
 * Cases: 2 KB and 100 KB messages, 20 concurrent sessions, one message per connection and many
 * per connection (smtp-source -d). Targets (one message per connection): at least 0.15 of the
 * ceiling at 2 KB and 0.3 at 100 KB.
 *
 * Environment: BENCH_MESSAGES (default 5000) for a quick run, BENCH_CASES (comma list of case
 * names, e.g. "2k-one") to run some cases only, BENCH_CPU_PROF (a directory) to run the Sluice
 * child under `node --cpu-prof` and keep the profiles there, BENCH_SLUICE (the path of another
 * build's dist/bin/sluice.js) to measure that build instead, for before/after comparisons,
 * BENCH_LOG_LEVEL (default warn) for Sluice's log level.
 *
 * Everything is on 127.0.0.1 with ports found free, every wait is bounded, and temporary app
 * dirs are removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, freePort, log, markdownTable, pickCases, positiveInt, procStats, runSmtpSource, sinkSeconds, STOP_TIMEOUT_MS, toolsPresent, writeBenchConfig } from './tools.js';
import { startSluice } from '../test/helpers/sluice-child.js';

const SESSIONS = 20;
const MESSAGES = positiveInt(process.env.BENCH_MESSAGES, 5000);
/** A load that takes longer than this is killed and the case fails (no run hangs the bench). */
const SOURCE_TIMEOUT_MS = Math.max(60_000, MESSAGES * 40);
/** Sluice's log level in the runs: warn keeps per-message lines out (BENCH_LOG_LEVEL=info shows their cost) */
const LOG_LEVEL = process.env.BENCH_LOG_LEVEL ?? 'warn';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sluiceBin = process.env.BENCH_SLUICE ? path.resolve(process.env.BENCH_SLUICE) : path.join(root, 'dist', 'bin', 'sluice.js');

interface Case {
  name: string;
  sizeBytes: number;
  /** many messages per connection (smtp-source -d) */
  many: boolean;
  /** the share of the ceiling we promise, where we promise one */
  target?: number;
}

const ALL_CASES: Case[] = [
  { name: '2k-one', sizeBytes: 2048, many: false, target: 0.15 },
  { name: '100k-one', sizeBytes: 102_400, many: false, target: 0.3 },
  { name: '2k-many', sizeBytes: 2048, many: true },
  { name: '100k-many', sizeBytes: 102_400, many: true },
];

interface SluiceRun {
  rate: number;
  peakRssBytes: number;
  cpuMs: number;
  queued: number;
  syncs: number;
  batches: number;
}

interface Row {
  c: Case;
  sinkRate: number;
  sluice: SluiceRun;
}

/** smtp-source's arguments for a case (the target comes after them). */
function sourceArgs(c: Case): string[] {
  const args = ['-s', String(SESSIONS), '-m', String(MESSAGES), '-l', String(c.sizeBytes)];
  if (c.many) args.push('-d');
  return [...args, '-f', 's@src.test', '-t', 'r@dest.test', '-M', 'client.test'];
}

interface Health {
  queue: { queued: number; commits?: { syncs: number; batches: number } };
}

async function health(apiPort: number): Promise<Health> {
  const res = await fetch(`http://${HOST}:${apiPort}/health`, { signal: AbortSignal.timeout(5000) });
  return (await res.json()) as Health;
}

async function runSluice(c: Case): Promise<SluiceRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-bench-'));
  const smtpPort = await freePort();
  const apiPort = await freePort();
  const channelPort = await freePort();
  // acceptance only: no delivery workers
  writeBenchConfig(dir, { logLevel: LOG_LEVEL, smtpPort, apiPort, channelPort }, ['[zones.default]', 'processes = 0']);
  const nodeArgs: string[] = [];
  const profDir = process.env.BENCH_CPU_PROF;
  if (profDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.resolve(profDir)}`, `--cpu-prof-name=sluice-${c.name}.cpuprofile`);
  const sluice = await startSluice(dir, { bin: sluiceBin, nodeArgs, readyOnGreeting: smtpPort });
  try {
    const before = procStats(sluice.pid);
    const rate = MESSAGES / (await runSmtpSource(sourceArgs(c), smtpPort, SOURCE_TIMEOUT_MS));
    const { peakRssBytes, cpuMs } = procStats(sluice.pid);
    const h = await health(apiPort);
    return {
      rate,
      peakRssBytes,
      cpuMs: cpuMs - before.cpuMs,
      queued: h.queue.queued,
      syncs: h.queue.commits?.syncs ?? 0,
      batches: h.queue.commits?.batches ?? 0,
    };
  } catch (err) {
    if (sluice.stderr().trim()) log(`sluice stderr: ${sluice.stderr().trim().slice(-4000)}`);
    throw err;
  } finally {
    await sluice.stop(STOP_TIMEOUT_MS);
    rmSync(dir, { recursive: true, force: true });
  }
}

function table(rows: Row[]): string {
  const head = ['case', 'smtp-sink msg/s', 'sluice msg/s', 'ratio', 'target', 'peak RSS MB', 'CPU ms/msg', 'msgs/fsync'];
  const lines = rows.map(({ c, sinkRate, sluice }) => {
    const ratio = sluice.rate / sinkRate;
    const target = c.target === undefined ? '-' : `${c.target} ${ratio >= c.target ? 'met' : 'MISSED'}`;
    return [
      c.name,
      sinkRate.toFixed(0),
      sluice.rate.toFixed(0),
      ratio.toFixed(3),
      target,
      (sluice.peakRssBytes / 2 ** 20).toFixed(0),
      (sluice.cpuMs / MESSAGES).toFixed(2),
      sluice.syncs ? (sluice.batches / sluice.syncs).toFixed(1) : '-',
    ];
  });
  return markdownTable(head, lines);
}

async function main(): Promise<number> {
  if (!toolsPresent(sluiceBin)) return 1;
  const cases = pickCases(ALL_CASES);
  if (!cases) return 1;
  log(`bench: ${MESSAGES} messages per run, ${SESSIONS} sessions, fsync on, log level ${LOG_LEVEL}, sluice ${path.relative(root, sluiceBin)}`);
  const rows: Row[] = [];
  let failed = false;
  for (const c of cases) {
    try {
      const sinkRate = MESSAGES / (await sinkSeconds(sourceArgs(c), SOURCE_TIMEOUT_MS));
      log(`  ${c.name}: smtp-sink ${sinkRate.toFixed(0)} msg/s`);
      const sluice = await runSluice(c);
      log(`  ${c.name}: sluice ${sluice.rate.toFixed(0)} msg/s, ${sluice.queued} queued, ${sluice.syncs} fsyncs for ${sluice.batches} commits`);
      if (sluice.queued !== MESSAGES) throw new Error(`expected ${MESSAGES} queued deliveries, the queue has ${sluice.queued}`);
      rows.push({ c, sinkRate, sluice });
    } catch (err) {
      failed = true;
      log(`bench: case ${c.name} failed: ${(err as Error).message}`);
    }
  }
  process.stdout.write(`\nAcceptance, ${MESSAGES} messages, ${SESSIONS} sessions, fsync on (${new Date().toISOString()})\n${table(rows)}\n`);
  return failed ? 1 : 0;
}

process.exitCode = await main();
