/**
 * Start-up on a queue of 50,000 rows: QUEUE_OPENED before the listeners, QUEUE_LOADED with every
 * row once counted, /health and /queue/:zone right after. The million-row run, which also checks
 * that the listeners come before the count ends, is startup-depth.slow.test.ts (FAULT_SLOW=1).
 */
import { test } from 'node:test';
import { checkStartupOnDeepQueue } from '../helpers/startup-depth.js';

test('a master on 50,000 rows opens the queue, listens and counts every row', { timeout: 120_000 }, async () => {
  await checkStartupOnDeepQueue(50_000, { expectListeningFirst: false, loadTimeoutMs: 60_000 });
});
