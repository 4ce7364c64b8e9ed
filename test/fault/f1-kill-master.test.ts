/**
 * F1 (fast variant) and issue #2's durability proof: `250` means durable. 500 messages at
 * concurrency 20 into `sluice run`, SIGKILL at a seeded random moment, restart on the same app
 * dir; every message that got 250 must be in the queue whole (metadata, both delivery rows,
 * body). The slow set runs 5 × 2000 (f1-kill-master.slow.test.ts).
 */
import { test } from 'node:test';
import { faultSeed } from '../helpers/seeded.js';
import { assertTrial, killMasterTrial } from './kill-master-trial.js';

test('F1: SIGKILL of the master during acceptance loses no acknowledged message (500 msgs, C=20)', { timeout: 120_000 }, async (t) => {
  const seed = faultSeed();
  const r = await killMasterTrial({ count: 500, concurrency: 20, seed });
  t.diagnostic(
    `seed=${seed} acked=${r.acked}/${r.count} LOST=${r.lost} duplicates=${r.duplicates} stored=${r.stored} ` +
      `kill at ${r.killAtAcks} acks / ${r.killAtMs} ms, restart ${r.restartMs} ms, first 250 after restart ${r.firstAckAfterRestartMs} ms, ` +
      `run ${r.elapsedMs} ms, outcomes ${JSON.stringify(r.outcomes)}`,
  );
  assertTrial(r, 20);
});
