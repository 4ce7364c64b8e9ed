/**
 * A 150 MB message relayed through a real `sluice run` (issue #13, target 5; FAULT_SLOW=1): the
 * master's RSS grows by less than 64 MB and the worker's by less than 32 MB while it streams in
 * over SMTP, into the queue, over the data channel and out to a loopback MX, and every byte of the
 * body arrives. Memory per message is bounded by the chunk size, not the message size, on both
 * sides of the data channel.
 *
 * Growth is measured as bench:depth's `large` case does: from the RSS each process holds after a
 * small warm-up message has been relayed (code loaded, one session open) to the highest of the
 * RSS sampled every 50 ms while the big one flows and VmHWM at the end (which also catches a peak
 * between samples; a start-up peak above it can only overstate the growth). The sink reads the
 * message as a stream (fakemx without keepData), so the test process holds none of it either.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SubmitClient, streamedBody, textBody } from '../../bench/smtp-submit.js';
import { budgetMs } from '../helpers/budget.js';
import { startFakeMx, type FakeMx } from '../helpers/fakemx.js';
import { rssBytes, startSluiceWith, type SluiceChild } from '../helpers/sluice-child.js';

const MB = 1024 * 1024;
const MESSAGE_BYTES = 150 * MB;
const MASTER_GROWTH_LIMIT = 64 * MB;
const WORKER_GROWTH_LIMIT = 32 * MB;
const SAMPLE_EVERY_MS = 50;
/** From the first byte sent to its arrival at the MX, stretched with the machine's load (it took 10-12 s at load 10). */
const RELAY_BUDGET_MS = 60_000;

let mx: FakeMx | undefined;
let child: SluiceChild | undefined;
after(async () => {
  await child?.stop();
  await mx?.stop();
});

/** Peak resident set since the process started (VmHWM). */
function hwmBytes(pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmHWM for ${pid}`);
  return Number(m[1]) * 1024;
}

/** The bench's 150 MB message, with a sha256 of its body (the bytes after the header block) made as it is sent. */
async function* hashedBody(bytes: number, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  let first = true;
  for await (const piece of streamedBody(bytes)) {
    if (first) first = false; // the header block
    else hash.update(piece);
    yield piece;
  }
}

test('a 150 MB message relays with the master growing < 64 MB and the worker < 32 MB', { timeout: 600_000 }, async (t) => {
  mx = await startFakeMx({ tls: false, keepData: false });
  child = await startSluiceWith({
    smtp: { maxSize: '160MB' },
    zones: { default: { processes: 1, connections: 2, route: mx.route } },
  });
  const worker = await child.waitForLine((l) => l.event === 'WORKER_READY', 20_000, 'WORKER_READY');
  const masterPid = child.pid;
  const workerPid = Number(worker.pid);
  assert.ok(workerPid > 0 && workerPid !== masterPid, `worker pid ${workerPid}`);

  // warm-up: the submission, queue, channel and delivery paths run once before the baseline
  const client = await SubmitClient.open(child.smtpPort);
  try {
    await client.send('s@src.test', 'r@dest.test', textBody(2048));
    await mx.waitFor(1, 30_000);
    await new Promise((r) => setTimeout(r, 1000));
    const base = { master: rssBytes(masterPid), worker: rssBytes(workerPid) };
    const peak = { ...base };
    const sampler = setInterval(() => {
      try {
        peak.master = Math.max(peak.master, rssBytes(masterPid));
        peak.worker = Math.max(peak.worker, rssBytes(workerPid));
      } catch {
        // a process gone: the relay fails and says so below
      }
    }, SAMPLE_EVERY_MS);
    const hash = createHash('sha256');
    const started = performance.now();
    let relayMs: number;
    try {
      await client.send('s@src.test', 'r@dest.test', hashedBody(MESSAGE_BYTES, hash));
      await mx.waitFor(2, budgetMs(RELAY_BUDGET_MS));
      relayMs = performance.now() - started;
    } finally {
      clearInterval(sampler);
    }
    const growth = {
      master: Math.max(peak.master, hwmBytes(masterPid)) - base.master,
      worker: Math.max(peak.worker, hwmBytes(workerPid)) - base.worker,
    };
    const mb = (n: number) => (n / MB).toFixed(1);
    t.diagnostic(
      `150 MB relayed in ${(relayMs / 1000).toFixed(1)} s; master ${mb(base.master)} MB before, +${mb(growth.master)} MB; ` +
        `worker ${mb(base.worker)} MB before, +${mb(growth.worker)} MB`,
    );

    const big = mx.messages.at(-1)!;
    assert.equal(big.outcome, 'accepted');
    assert.ok(big.size! > MESSAGE_BYTES, `${big.size} bytes arrived`);
    assert.equal(big.bodySha256, hash.digest('hex'), 'the body arrived byte for byte');
    assert.ok(growth.master < MASTER_GROWTH_LIMIT, `the master grew by ${mb(growth.master)} MB (limit ${mb(MASTER_GROWTH_LIMIT)})`);
    assert.ok(growth.worker < WORKER_GROWTH_LIMIT, `the worker grew by ${mb(growth.worker)} MB (limit ${mb(WORKER_GROWTH_LIMIT)})`);
    assert.ok(relayMs < budgetMs(RELAY_BUDGET_MS), `the relay took ${Math.round(relayMs)} ms (budget ${budgetMs(RELAY_BUDGET_MS)} ms)`);
  } finally {
    client.close();
  }
});
