/**
 * F6 (c) and (d), slow set: a server that accepts TCP and never greets
 * (greeting timeout 2 s), and one that takes the whole message and never answers the dot
 * (socket timeout 5 s). Same pass criteria as the fast (a)/(b) file.
 */
import { test, after } from 'node:test';
import { startFakeMx } from '../helpers/fakemx.js';
import { runF6 } from './f6-scenario.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F6 (c) silent server and (d) stall after the dot: bounded attempts, no head-of-line blocking, one expiry DSN each', async () => {
  const capture = await startFakeMx({ tls: false });
  cleanup.push(() => capture.stop());
  const silent = await startFakeMx({ mode: 'silent', tls: false });
  cleanup.push(() => silent.stop());
  const stall = await startFakeMx({ mode: { kind: 'stallAt', at: 'DOT' }, tls: false });
  cleanup.push(() => stall.stop());
  await runF6(
    capture,
    [
      { name: 'silent', domain: 'silent.test', route: silent.route, timeoutMs: 2000, maxAttemptMs: 3000 },
      { name: 'stall-dot', domain: 'stall.test', route: stall.route, timeoutMs: 5000, maxAttemptMs: 6000 },
    ],
    10,
    cleanup,
    (line) => console.log(`# F6 ${line}`),
  );
});
