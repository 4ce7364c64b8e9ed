/**
 * The depth benchmark (issue #13): Sluice as the work grows. Each case starts Sluice (a child
 * `sluice run`, fsync on) on a queue the fixture writer filled directly (queue-fill.ts), and
 * measures it against the same thing without the depth, in the same run, alternating:
 *
 * - `deep`: fresh mail (smtp-source, 2 KB, 20 sessions) relayed to smtp-sink with 100,000 deferred
 *   rows over 1,000 domains due later, against an empty queue. Target: ≥ 0.8 of the empty rate,
 *   the master's peak RSS less than 50 MB above the empty run's.
 * - `backlog`: 100,000 rows over 1,000 domains, all due at start, drained to smtp-sink; the rate
 *   between 10% and 90% arrived, against fresh mail relayed from an empty queue (as `deep`
 *   measures it). Meanwhile 20 fresh messages go in one by one to a domain routed to a second sink
 *   in the bench, which notes when each arrives: the time from its 250. Half way, GET
 *   /queue/default says how many rows each domain has left (a fair drain leaves them even).
 *   Targets: ≥ 0.8 of the fresh rate, fresh mail delivered within 2 s of its 250.
 * - `startup`: 1,000,000 rows (100,000 messages × 10 recipients); how long from the spawn until
 *   the SMTP listener answers, and until QUEUE_LOADED; GET /health while loading and after.
 *   Target: listening within 5 s; counters right once loaded.
 * - `domains`: 10,000 messages of 2 KB to 1,000 distinct domains (each a static route to one of
 *   four smtp-sinks), against the same to one domain. 20 connections of our own client (many
 *   messages each: smtp-source has one recipient domain). Target: ≥ 0.8 of the one-domain rate.
 * - `large`: one message of 150 MB (maxSize raised) through Sluice to smtp-sink; how far the
 *   master's and the worker's RSS rise above what they held before it (VmHWM, and VmRSS sampled
 *   every 50 ms). Targets: master < 64 MB, worker < 32 MB.
 *
 * Environment: BENCH_CASES (e.g. "deep,startup"), BENCH_ROUNDS (alternating rounds, 2),
 * BENCH_MESSAGES (fresh messages per `deep` run, 3000), BENCH_DEPTH_ROWS (the deep queue, 100000),
 * BENCH_BACKLOG_ROWS (100000), BENCH_STARTUP_ROWS (1000000), BENCH_DOMAIN_MESSAGES (10000), BENCH_LARGE_MB
 * (150), BENCH_SLUICE (another build's dist/bin/sluice.js).
 *
 * Everything is on 127.0.0.1 with ports found free, every wait is bounded, children are stopped by
 * PID and every temporary app dir is removed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMTPServer } from 'smtp-server';
import { startSluice as startSluiceChild, type LogLine, type SluiceChild } from '../test/helpers/sluice-child.js';
import { fillQueue, type QueueFillOptions } from './queue-fill.js';
import { SubmitClient, streamedBody, textBody } from './smtp-submit.js';
import { CountingSink, HOST, ProcessWatch, childPids, freePort, log, markdownTable, pickCases, positiveInt, procStats, rssBytes, runSmtpSource, STOP_TIMEOUT_MS, toolsPresent, writeBenchConfig } from './tools.js';

const ROUNDS = positiveInt(process.env.BENCH_ROUNDS, 2);
const FRESH_MESSAGES = positiveInt(process.env.BENCH_MESSAGES, 3000);
const DEPTH_ROWS = positiveInt(process.env.BENCH_DEPTH_ROWS, 100_000);
const BACKLOG_ROWS = positiveInt(process.env.BENCH_BACKLOG_ROWS, 100_000);
const STARTUP_ROWS = positiveInt(process.env.BENCH_STARTUP_ROWS, 1_000_000);
const DOMAIN_MESSAGES = positiveInt(process.env.BENCH_DOMAIN_MESSAGES, 10_000);
const LARGE_MB = positiveInt(process.env.BENCH_LARGE_MB, 150);
const SESSIONS = 20;
const DOMAINS = 1000;
const HOUR = 3_600_000;
const MB = 2 ** 20;
const RUN_TIMEOUT_MS = 600_000;
const WORKERS_TIMEOUT_MS = 30_000;

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const sluiceBin = process.env.BENCH_SLUICE ? path.resolve(process.env.BENCH_SLUICE) : path.join(root, 'dist', 'bin', 'sluice.js');

/** One line of the results: the case, what was measured, the figure, its target and whether it was met. */
interface Result {
  name: string;
  what: string;
  value: string;
  target: string;
  met?: boolean;
}
const results: Result[] = [];
function result(r: Result): void {
  results.push(r);
  log(`  ${r.name}: ${r.what} = ${r.value}${r.target ? ` (target ${r.target}: ${r.met === undefined ? '-' : r.met ? 'met' : 'MISSED'})` : ''}`);
}

interface Sluice {
  child: SluiceChild;
  dir: string;
  smtpPort: number;
  apiPort: number;
  /** performance.now() at the spawn, and when the SMTP listener first answered */
  spawnedAt: number;
  listeningAt: number;
  /** log lines (JSON) the master wrote, parsed */
  lines: LogLine[];
  watch: ProcessWatch;
  stop(): Promise<void>;
}

/** Starts Sluice on a new app dir whose queue `fill` filled first; waits for its workers. */
async function startSluice(o: { fill?: QueueFillOptions; config: string[]; logLevel?: string; workers?: number; env?: NodeJS.ProcessEnv }): Promise<Sluice> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sluice-depth-'));
  let child: SluiceChild | undefined;
  try {
    if (o.fill) {
      const filled = await fillQueue(path.join(dir, 'queue'), o.fill);
      log(`    fixture: ${filled.rows} rows in ${filled.messages} messages written in ${filled.ms} ms`);
    }
    const smtpPort = await freePort();
    const apiPort = await freePort();
    const channelPort = await freePort();
    writeBenchConfig(dir, { logLevel: o.logLevel ?? 'warn', smtpPort, apiPort, channelPort }, o.config);
    const spawnedAt = performance.now();
    // a build that reads the whole queue before it listens takes long on a million rows
    child = await startSluiceChild(dir, { bin: sluiceBin, readyOnGreeting: smtpPort, readLog: true, readyTimeoutMs: 180_000, ...(o.env ? { env: o.env } : {}) });
    const listeningAt = performance.now();
    const watch = new ProcessWatch(child.pid);
    const deadline = Date.now() + WORKERS_TIMEOUT_MS;
    while (watch.pids().length < 1 + (o.workers ?? 1)) {
      if (Date.now() > deadline) throw new Error(`sluice did not start its workers within ${WORKERS_TIMEOUT_MS} ms`);
      await sleep(50);
    }
    const started = child;
    return {
      child,
      dir,
      smtpPort,
      apiPort,
      spawnedAt,
      listeningAt,
      lines: child.lines,
      watch,
      stop: async () => {
        await started.stop(STOP_TIMEOUT_MS);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child?.stderr().trim()) log(`sluice stderr: ${child.stderr().trim().slice(-4000)}`);
    await child?.stop(STOP_TIMEOUT_MS);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function zoneConfig(sinkPort: number, extra: string[] = []): string[] {
  return ['[delivery]', 'sessionIdle = "5s"', '[zones.default]', 'processes = 1', 'connections = 20', 'connectionsPerDomain = 20', 'tls = "none"', `route = { host = "${HOST}", port = ${sinkPort} }`, ...extra];
}

async function getJson(port: number, url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://${HOST}:${port}${url}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json() };
}

/** Fresh mail relayed: smtp-source 2 KB → Sluice (with `fill` queued first) → smtp-sink. */
async function freshRelay(fill: QueueFillOptions | undefined): Promise<{ rate: number; masterPeakMb: number; masterIdleMb: number }> {
  const sink = await CountingSink.start();
  const sluice = await startSluice({ fill, config: zoneConfig(sink.port) }).catch(async (err) => {
    await sink.stop();
    throw err;
  });
  try {
    // the steady state of a deep queue, not its start-up: the rows found at start are counted
    const deadline = Date.now() + 120_000;
    while ((await getJson(sluice.apiPort, '/health')).body.queue.loading === true && Date.now() < deadline) await sleep(200);
    await sleep(1000);
    const masterIdleMb = rssBytes(sluice.child.pid) / MB;
    const started = process.hrtime.bigint();
    const arrived = sink.waitFor(FRESH_MESSAGES, RUN_TIMEOUT_MS);
    const source = runSmtpSource(['-s', String(SESSIONS), '-m', String(FRESH_MESSAGES), '-l', '2048', '-f', 's@src.test', '-t', 'r@dest.test', '-M', 'client.test'], sluice.smtpPort, RUN_TIMEOUT_MS);
    await Promise.all([source, arrived]);
    const rate = FRESH_MESSAGES / (Number(sink.reachedAt - started) / 1e9);
    return { rate, masterPeakMb: procStats(sluice.child.pid).peakRssBytes / MB, masterIdleMb };
  } finally {
    await sluice.stop();
    await sink.stop();
  }
}

const deepFill = (): QueueFillOptions => ({ rows: DEPTH_ROWS, domains: DOMAINS, deferredShare: 1, dueFrom: Date.now() + HOUR, dueSpreadMs: HOUR, bodyBytes: 2048 });

async function caseDeep(): Promise<void> {
  const empty: number[] = [];
  const deep: number[] = [];
  const ratios: number[] = [];
  const growth: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const e = await freshRelay(undefined);
    log(`    empty queue: ${e.rate.toFixed(0)} msg/s, master idle ${e.masterIdleMb.toFixed(0)} MB, peak ${e.masterPeakMb.toFixed(0)} MB`);
    const d = await freshRelay(deepFill());
    log(`    ${DEPTH_ROWS} deferred: ${d.rate.toFixed(0)} msg/s, master idle ${d.masterIdleMb.toFixed(0)} MB, peak ${d.masterPeakMb.toFixed(0)} MB`);
    empty.push(e.rate);
    deep.push(d.rate);
    ratios.push(d.rate / e.rate);
    growth.push(d.masterPeakMb - e.masterPeakMb);
  }
  result({ name: 'deep', what: 'fresh msg/s, empty queue', value: range(empty, 0), target: '' });
  result({ name: 'deep', what: `fresh msg/s, ${DEPTH_ROWS} deferred rows`, value: range(deep, 0), target: '' });
  result({ name: 'deep', what: 'ratio deep/empty', value: range(ratios, 2), target: '≥ 0.8', met: Math.min(...ratios) >= 0.8 });
  result({ name: 'deep', what: 'master peak RSS, deep − empty (MB)', value: range(growth, 0), target: '< 50', met: Math.max(...growth) < 50 });
}

/** A second sink, in the bench: notes when each message arrives, by its recipient. */
async function arrivalSink(): Promise<{ port: number; arrivals: Map<string, number>; close(): Promise<void> }> {
  const arrivals = new Map<string, number>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        for (const r of session.envelope.rcptTo) arrivals.set(r.address, performance.now());
        callback();
      });
    },
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, HOST, resolve));
  return { port, arrivals, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

async function caseBacklog(): Promise<void> {
  const drain: number[] = [];
  const fresh: number[] = [];
  const ratios: number[] = [];
  const latencies: number[] = [];
  const spreads: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const e = await freshRelay(undefined);
    fresh.push(e.rate);
    log(`    fresh, empty queue: ${e.rate.toFixed(0)} msg/s`);
    const sink = await CountingSink.start();
    const second = await arrivalSink();
    let sluice: Sluice | undefined;
    try {
      const now = Date.now();
      sluice = await startSluice({
        fill: { rows: BACKLOG_ROWS, domains: DOMAINS, deferredShare: 1, dueFrom: now - HOUR, dueSpreadMs: HOUR - 60_000, bodyBytes: 2048 },
        config: zoneConfig(sink.port, ['[routes."fresh.test"]', `host = "${HOST}"`, `port = ${second.port}`]),
      });
      const at = (n: number) => sink.waitFor(n, RUN_TIMEOUT_MS).then(() => performance.now());
      const t10 = await at(Math.round(BACKLOG_ROWS * 0.1));
      // fresh mail while the backlog drains: one message every 250 ms, its 250 noted
      const client = await SubmitClient.open(sluice.smtpPort);
      const acked = new Map<string, number>();
      const body = textBody(2048);
      let halfway: Promise<void> | undefined;
      for (let i = 0; i < 20; i++) {
        const to = `fresh${i}@fresh.test`;
        acked.set(to, await client.send('s@src.test', to, body));
        await sleep(250);
        if (!halfway && sink.count >= BACKLOG_ROWS / 2) halfway = domainSpread(sluice.apiPort).then((s) => void spreads.push(s));
      }
      client.close();
      if (!halfway) {
        await sink.waitFor(Math.round(BACKLOG_ROWS / 2), RUN_TIMEOUT_MS);
        halfway = domainSpread(sluice.apiPort).then((s) => void spreads.push(s));
      }
      await halfway;
      const t90 = await at(Math.round(BACKLOG_ROWS * 0.9));
      const rate = (BACKLOG_ROWS * 0.8) / ((t90 - t10) / 1000);
      drain.push(rate);
      ratios.push(rate / e.rate);
      const deadline = Date.now() + 30_000;
      while (second.arrivals.size < acked.size && Date.now() < deadline) await sleep(100);
      const lat = [...acked].map(([to, ackAt]) => (second.arrivals.has(to) ? second.arrivals.get(to)! - ackAt : Infinity));
      latencies.push(Math.max(...lat));
      log(`    backlog of ${BACKLOG_ROWS}: ${rate.toFixed(0)} msg/s (10%→90%); fresh mail meanwhile: p50 ${pct(lat, 0.5)} ms, max ${pct(lat, 1)} ms after its 250; half way ${spreads.at(-1)}`);
    } finally {
      await sluice?.stop();
      await second.close();
      await sink.stop();
    }
  }
  result({ name: 'backlog', what: 'fresh msg/s, empty queue', value: range(fresh, 0), target: '' });
  result({ name: 'backlog', what: `drain msg/s, ${BACKLOG_ROWS} rows due`, value: range(drain, 0), target: '' });
  result({ name: 'backlog', what: 'ratio drain/fresh', value: range(ratios, 2), target: '≥ 0.8', met: Math.min(...ratios) >= 0.8 });
  result({ name: 'backlog', what: 'fresh mail during the drain, slowest 250 → arrival (ms)', value: range(latencies, 0), target: '≤ 2000', met: Math.max(...latencies) <= 2000 });
  result({ name: 'backlog', what: 'rows left per domain half way (min-max)', value: spreads.join('; '), target: '' });
}

/** Rows left per domain now (GET /queue/default): "min-max over N domains". */
async function domainSpread(apiPort: number): Promise<string> {
  const { body } = await getJson(apiPort, '/queue/default');
  const left = (body.domains as { queued: number; deferred: number }[]).map((d) => d.queued + d.deferred);
  return left.length ? `${Math.min(...left)}-${Math.max(...left)} over ${left.length} domains` : 'none left';
}

async function caseStartup(): Promise<void> {
  for (let round = 0; round < ROUNDS; round++) {
    for (const rows of [0, STARTUP_ROWS]) {
      const sluice = await startSluice({
        fill: rows ? { rows, rowsPerMessage: 10, domains: DOMAINS, deferredShare: 1, dueFrom: Date.now() + HOUR, bodyBytes: 1024 } : undefined,
        config: zoneConfig(9),
        logLevel: 'info',
      });
      try {
        const listenMs = sluice.listeningAt - sluice.spawnedAt;
        const whileLoading = await getJson(sluice.apiPort, '/health');
        const deadline = Date.now() + 120_000;
        let loaded: LogLine | undefined;
        while (!(loaded = sluice.lines.find((l) => l.event === 'QUEUE_LOADED')) && Date.now() < deadline) await sleep(50);
        const after = await getJson(sluice.apiPort, '/health');
        const counted = (after.body.queue.queued as number) + (after.body.queue.deferred as number);
        const loadedMs = loaded ? (sluice.child.seenAt(loaded) ?? NaN) - sluice.spawnedAt : NaN;
        log(`    ${rows} rows: listening ${listenMs.toFixed(0)} ms after the spawn; QUEUE_LOADED ${loadedMs.toFixed(0)} ms after (its ms ${String(loaded?.ms)}); /health while loading ${JSON.stringify({ loading: whileLoading.body.queue.loading, queued: whileLoading.body.queue.queued, deferred: whileLoading.body.queue.deferred })}, after: ${counted} rows`);
        result({ name: 'startup', what: `${rows} rows: spawn → SMTP listening (ms)`, value: listenMs.toFixed(0), target: rows ? '≤ 5000' : '', met: rows ? listenMs <= 5000 : undefined });
        result({ name: 'startup', what: `${rows} rows: spawn → QUEUE_LOADED (ms)`, value: loadedMs.toFixed(0), target: '' });
        result({ name: 'startup', what: `${rows} rows: rows counted once loaded`, value: String(counted), target: String(rows), met: counted === rows });
      } finally {
        await sluice.stop();
      }
    }
  }
}

/** `messages` of 2 KB over 20 connections of our own client to `domains` domains; the rate to the last arrival. */
async function manyDomainsRun(domains: number): Promise<number> {
  const sinks = await Promise.all([0, 1, 2, 3].map(() => CountingSink.start()));
  let sluice: Sluice | undefined;
  try {
    const routes: string[] = [];
    for (let d = 0; d < domains; d++) routes.push(`[routes."d${d}.many.test"]`, `host = "${HOST}"`, `port = ${sinks[d % sinks.length]!.port}`);
    sluice = await startSluice({ config: zoneConfig(9, routes) });
    await sleep(500);
    const body = textBody(2048);
    const started = performance.now();
    let next = 0;
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => SubmitClient.open(sluice!.smtpPort)));
    await Promise.all(
      clients.map(async (c) => {
        for (let i = next++; i < DOMAIN_MESSAGES; i = next++) await c.send('s@src.test', `r${i}@d${i % domains}.many.test`, body);
        c.close();
      }),
    );
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    while (sinks.reduce((n, s) => n + s.count, 0) < DOMAIN_MESSAGES) {
      if (Date.now() > deadline) throw new Error('not every message arrived');
      await sleep(20);
    }
    return DOMAIN_MESSAGES / ((performance.now() - started) / 1000);
  } finally {
    await sluice?.stop();
    for (const s of sinks) await s.stop();
  }
}

async function caseDomains(): Promise<void> {
  const one: number[] = [];
  const many: number[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const a = await manyDomainsRun(1);
    const b = await manyDomainsRun(DOMAINS);
    log(`    one domain ${a.toFixed(0)} msg/s, ${DOMAINS} domains ${b.toFixed(0)} msg/s`);
    one.push(a);
    many.push(b);
    ratios.push(b / a);
  }
  result({ name: 'domains', what: 'msg/s, one domain', value: range(one, 0), target: '' });
  result({ name: 'domains', what: `msg/s, ${DOMAINS} domains`, value: range(many, 0), target: '' });
  result({ name: 'domains', what: 'ratio many/one', value: range(ratios, 2), target: '≥ 0.8', met: Math.min(...ratios) >= 0.8 });
}

async function caseLarge(): Promise<void> {
  const master: number[] = [];
  const worker: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const r = await largeRun();
    master.push(r.master);
    worker.push(r.worker);
  }
  result({ name: 'large', what: `${LARGE_MB} MB message: master RSS growth (MB)`, value: range(master, 0), target: '< 64', met: Math.max(...master) < 64 });
  result({ name: 'large', what: `${LARGE_MB} MB message: worker RSS growth (MB)`, value: range(worker, 0), target: '< 32', met: Math.max(...worker) < 32 });
}

async function largeRun(): Promise<{ master: number; worker: number }> {
  const sink = await CountingSink.start();
  let sluice: Sluice | undefined;
  try {
    // the child helper passes no SLUICE_… variable of ours on, only those given here
    sluice = await startSluice({ config: zoneConfig(sink.port), env: { SLUICE_SMTP__MAXSIZE: `${LARGE_MB + 10}MB` } });
    const masterPid = sluice.child.pid;
    const workerPid = childPids(masterPid)[0]!;
    // one small message first: the paths are warm, the worker has its session code loaded
    const client = await SubmitClient.open(sluice.smtpPort);
    await client.send('s@src.test', 'r@dest.test', textBody(2048));
    await sink.waitFor(1, 30_000);
    await sleep(1000);
    const base = { master: rssBytes(masterPid), worker: rssBytes(workerPid) };
    const peak = { master: 0, worker: 0 };
    const sampler = setInterval(() => {
      peak.master = Math.max(peak.master, rssBytes(masterPid));
      peak.worker = Math.max(peak.worker, rssBytes(workerPid));
    }, 50);
    try {
      await client.send('s@src.test', 'r@dest.test', streamedBody(LARGE_MB * MB));
      await sink.waitFor(2, RUN_TIMEOUT_MS);
    } finally {
      clearInterval(sampler);
      client.close();
    }
    const hwm = { master: procStats(masterPid).peakRssBytes, worker: procStats(workerPid).peakRssBytes };
    const growth = { master: (Math.max(hwm.master, peak.master) - base.master) / MB, worker: (Math.max(hwm.worker, peak.worker) - base.worker) / MB };
    log(`    ${LARGE_MB} MB: master ${(base.master / MB).toFixed(0)} MB before, peak ${(peak.master / MB).toFixed(0)} (VmHWM ${(hwm.master / MB).toFixed(0)}); worker ${(base.worker / MB).toFixed(0)} MB before, peak ${(peak.worker / MB).toFixed(0)} (VmHWM ${(hwm.worker / MB).toFixed(0)})`);
    return growth;
  } finally {
    await sluice?.stop();
    await sink.stop();
  }
}

function range(values: number[], digits: number): string {
  const lo = Math.min(...values).toFixed(digits);
  const hi = Math.max(...values).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
}

function pct(values: number[], p: number): string {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))]!.toFixed(0);
}

const ALL_CASES = [
  { name: 'deep', run: caseDeep },
  { name: 'backlog', run: caseBacklog },
  { name: 'startup', run: caseStartup },
  { name: 'domains', run: caseDomains },
  { name: 'large', run: caseLarge },
];

async function main(): Promise<number> {
  if (!toolsPresent(sluiceBin)) return 1;
  const cases = pickCases(ALL_CASES);
  if (!cases) return 1;
  log(`bench depth: ${ROUNDS} round(s), fsync on, 1 worker process × 20 connections (${new Date().toISOString()})`);
  let failed = false;
  for (const c of cases) {
    log(`case ${c.name}`);
    try {
      await c.run();
    } catch (err) {
      failed = true;
      log(`bench depth: case ${c.name} failed: ${(err as Error).stack ?? String(err)}`);
    }
  }
  const rows = results.map((r) => [r.name, r.what, r.value, r.target, r.met === undefined ? '' : r.met ? 'met' : 'MISSED']);
  process.stdout.write(`\n${markdownTable(['case', 'measured', 'figure', 'target', ''], rows)}\n`);
  return failed || results.some((r) => r.met === false) ? 1 : 0;
}

process.exitCode = await main();
