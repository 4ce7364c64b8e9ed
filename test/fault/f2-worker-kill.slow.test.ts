/**
 * F2, slow set: 500 messages, five SIGKILLs of a random worker 1–3 s apart.
 */
import { test, after } from 'node:test';
import { runF2 } from './f2-scenario.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

test('F2 slow: 5 kills during 500 messages → none lost, duplicates ≤ in-flight, replaced ≤ 2 s each, no stuck lease', async () => {
  await runF2({ messages: 500, kills: 5, processes: 2, connections: 10, delayDotMs: 1500 }, cleanup, (line) => console.log(`# F2 ${line}`));
});
