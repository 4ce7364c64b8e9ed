/**
 * Issue 8, item 6: AUTH floods must not starve the queue.
 * - 100 sessions, from 100 loopback addresses, log in with a wrong password over and over while
 *   a client submits 200 messages (no AUTH: it is in trustedNetworks); that client's p95 time to
 *   250 stays within twice its p95 without the flood (stretched by load, budget.ts). Password hashing (scrypt) runs on its own
 *   thread with a bounded queue, so it never waits in front of LevelDB's commits on libuv's pool.
 * - Failed logins are counted per client address across connections: past
 *   smtp.maxAuthFailures in smtp.authFailureWindow every AUTH from there gets 421 at once, the
 *   right password included, and costs no hashing.
 * Sluice runs as a child process, so its event loop is not the one of these clients.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { hashPassword } from '../../lib/accept/passwords.js';
import { budgetMs } from '../helpers/budget.js';
import { childConfig, writeConfig } from '../helpers/app-dir.js';
import { startSluice, type SluiceChild } from '../helpers/sluice-child.js';
import { tempDir } from '../helpers/master.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';
import { submit } from '../helpers/submit.js';
import { rmSync } from 'node:fs';

let sluice: SluiceChild;
let dir: string;
let port = 0;
before(async () => {
  dir = tempDir();
  writeConfig(dir, childConfig({ smtp: { users: { alice: await hashPassword('right-password') } }, zones: { default: { processes: 0 } } }));
  sluice = await startSluice(dir);
  port = sluice.port('smtp');
});
after(async () => {
  await sluice.stop();
  rmSync(dir, { recursive: true, force: true });
});

const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

/**
 * One flooding client: logs in with a wrong password until the server closes, then connects
 * again, until `stop()`. Counts the AUTH replies it got.
 */
function flooder(localAddress: string, replies: Map<number, number>): { stop(): Promise<void> } {
  let stopped = false;
  let current: net.Socket | undefined;
  const loop = (async () => {
    for (let round = 0; !stopped && round < 100_000; round++) {
      const c = await SmtpTalk.connect(port, '127.0.0.1', localAddress).catch(() => undefined);
      if (!c) continue;
      current = c.socket;
      try {
        if ((await c.next(30_000))?.code !== 220) continue;
        c.write('EHLO flood.test\r\n');
        if ((await c.next(30_000))?.code !== 250) continue;
        for (let i = 0; !stopped && i < 100; i++) {
          c.write(`AUTH PLAIN ${plain('alice', `wrong-${i}`)}\r\n`);
          const r = await c.next(30_000);
          if (!r) break;
          replies.set(r.code, (replies.get(r.code) ?? 0) + 1);
          if (r.code === 421) break;
        }
      } catch {
        // a reply that did not come: connect again
      } finally {
        c.close();
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      current?.destroy();
      await loop;
    },
  };
}

/** Submits `count` messages one after another (within `deadlineMs`); the p95 and median time to 250. */
async function timesToQueued(count: number, runId: string, deadlineMs = 60_000): Promise<{ p95: number; median: number }> {
  const end = Date.now() + deadlineMs;
  const r = await submit({
    target: () => ({ host: '127.0.0.1', port }),
    runId,
    count,
    concurrency: 1,
    recipients: ['r@dest.test'],
    timeoutMs: 10_000,
    maxRetries: 0,
    shouldStop: () => Date.now() > end,
  });
  const times = r.final.filter((a) => a.outcome === '250').map((a) => a.endMs - a.startMs);
  times.sort((a, b) => a - b);
  const p95 = times[Math.floor(times.length * 0.95)] ?? Infinity;
  assert.equal(times.length, count, `${times.length} of ${count} messages got their 250 within ${deadlineMs / 1000} s (p95 of those: ${p95} ms; others: ${JSON.stringify(r.final.filter((a) => a.outcome !== '250').slice(0, 3))})`);
  return { p95, median: times[Math.floor(times.length / 2)]! };
}

test('failed logins are counted per address across connections: past the limit, 421 at once, even for the right password', async () => {
  const from = '127.0.2.1';
  const login = async (pass: string) => {
    const c = await SmtpTalk.connect(port, '127.0.0.1', from);
    try {
      await c.expect(220);
      await c.send('EHLO client.test', 250);
      c.write(`AUTH PLAIN ${plain('alice', pass)}\r\n`);
      return await c.next();
    } finally {
      c.close();
    }
  };
  // 20 failures (the default limit), each on a connection of its own
  for (let i = 0; i < 20; i++) assert.equal((await login(`wrong-${i}`))?.code, 535, `failure ${i + 1}`);
  const started = performance.now();
  const blocked = await login('right-password');
  assert.match(blocked?.text ?? '', /^421 4\.7\.0 /);
  assert.ok(performance.now() - started < 1000, 'refused at once');
  // another address is not affected
  const c = await SmtpTalk.connect(port, '127.0.0.1', '127.0.2.2');
  await c.expect(220);
  await c.send('EHLO client.test', 250);
  await c.send(`AUTH PLAIN ${plain('alice', 'right-password')}`, 235);
  c.close();
});

test('100 sessions looping on bad AUTH: a submitter\'s p95 time to 250 stays within 2x of the unloaded run', async (t) => {
  await timesToQueued(30, 'warm');
  const quiet = await timesToQueued(200, 'quiet');
  const replies = new Map<number, number>();
  const flood = Array.from({ length: 100 }, (_, i) => flooder(`127.0.1.${i + 1}`, replies));
  try {
    // the flood in full swing before the measure starts: every session past its first quick
    // tries and into the slow ones (the server answers a failing session slower from the third)
    const started = performance.now();
    while ([...replies.values()].reduce((a, b) => a + b, 0) < 300 && performance.now() - started < 20_000) await new Promise((resolve) => setTimeout(resolve, 50));
    const loaded = await timesToQueued(200, 'loaded');
    t.diagnostic(`p95 to 250: ${quiet.p95} ms quiet, ${loaded.p95} ms under the flood (medians ${quiet.median}, ${loaded.median}); AUTH replies meanwhile: ${JSON.stringify(Object.fromEntries(replies))}`);
    // 2x, stretched like every fault bound when the machine is busier than its cores: the two
    // p95s are taken a few seconds apart, and the flood's 100 clients share this machine's cores
    const bound = budgetMs(2 * Math.max(quiet.p95, 5));
    assert.ok(loaded.p95 <= bound, `p95 ${loaded.p95} ms under the flood, ${quiet.p95} ms without (bound ${bound} ms)`);
  } finally {
    await Promise.all(flood.map((f) => f.stop()));
  }
});
