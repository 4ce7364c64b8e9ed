/**
 * F2, fast set: SIGKILL a delivery worker mid-delivery, twice, during 100
 * messages. The slow set (f2-worker-kill.slow.test.ts) does 500 messages and 5 kills.
 */
import { test, after } from 'node:test';
import { runF2 } from './f2-scenario.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F2: SIGKILL a worker mid-delivery (2 kills, 100 messages) → none lost, duplicates ≤ its in-flight, replaced ≤ 2 s, no stuck lease', async () => {
  await runF2({ messages: 100, kills: 2, processes: 2, connections: 10, delayDotMs: 1500 }, cleanup, (line) => console.log(`# F2 ${line}`));
});
