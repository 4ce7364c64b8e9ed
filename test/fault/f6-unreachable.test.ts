/**
 * F6 (a) and (b): the destination refuses connections, or blackholes them
 * (connect timeout). Each attempt ends within its timeout (+1 s), attempts stay within the
 * retry policy (no hot loop), a control domain keeps delivering meanwhile, and after
 * maxQueueTime every message has exactly one "delivery time expired" DSN and the queue is
 * empty. (c) silent server and (d) stall after the dot are in f6-unreachable.slow.test.ts.
 */
import { test, after } from 'node:test';
import { startFakeMx } from '../helpers/fakemx.js';
import { startBlackhole } from '../helpers/blackhole.js';
import { closedPort } from '../helpers/delivery-kit.js';
import { runF6 } from './f6-scenario.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F6 (a) refused and (b) blackhole: bounded attempts, no head-of-line blocking, one expiry DSN each, empty queue', async () => {
  const capture = await startFakeMx({ tls: false });
  cleanup.push(() => capture.stop());
  const hole = await startBlackhole();
  cleanup.push(() => hole.stop());
  const refusedPort = await closedPort();
  await runF6(
    capture,
    [
      { name: 'refused', domain: 'refused.test', route: { host: '127.0.0.1', port: refusedPort }, timeoutMs: 0, maxAttemptMs: 1000, deferredStatus: '4.4.1' },
      { name: 'blackhole', domain: 'hole.test', route: { host: hole.host, port: hole.port }, timeoutMs: 2000, maxAttemptMs: 3000 },
    ],
    10,
    cleanup,
    (line) => console.log(`# F6 ${line}`),
  );
});
