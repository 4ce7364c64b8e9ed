/**
 * Start-up on a queue of 1,000,000 rows (issue #13, FAULT_SLOW=1): the master listens before the
 * rows are counted, says "loading" meanwhile, and counts every row. The fixture takes about a
 * minute to write on a loaded 2-core machine, the count about as long.
 */
import { test } from 'node:test';
import { checkStartupOnDeepQueue } from '../helpers/startup-depth.js';

test('a master on 1,000,000 rows listens before they are counted, then counts every one', { timeout: 600_000 }, async (t) => {
  const r = await checkStartupOnDeepQueue(1_000_000, { expectListeningFirst: true, loadTimeoutMs: 300_000 });
  t.diagnostic(`count took ${r.countMs} ms`);
});
