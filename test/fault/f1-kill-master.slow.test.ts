/**
 * F1 (slow set): five trials of 2000 messages at concurrency 20, each with a SIGKILL of the
 * master at its own seeded random moment and a restart on the same app dir. LOST must be 0 in
 * every trial; duplicates are reported (at most one per connection in flight at the kill).
 */
import { test } from 'node:test';
import { faultSeed } from '../helpers/seeded.js';
import { assertTrial, killMasterTrial } from './kill-master-trial.js';

const TRIALS = 5;
const seed = faultSeed();

for (let i = 0; i < TRIALS; i++) {
  test(`F1 slow, trial ${i + 1}/${TRIALS}: SIGKILL during 2000 submissions loses nothing`, { timeout: 180_000 }, async (t) => {
    const r = await killMasterTrial({ count: 2000, concurrency: 20, seed: seed + i });
    t.diagnostic(
      `seed=${r.seed} acked=${r.acked}/${r.count} LOST=${r.lost} duplicates=${r.duplicates} stored=${r.stored} ` +
        `kill at ${r.killAtAcks} acks / ${r.killAtMs} ms, restart ${r.restartMs} ms, first 250 after restart ${r.firstAckAfterRestartMs} ms, ` +
        `run ${r.elapsedMs} ms, outcomes ${JSON.stringify(r.outcomes)}`,
    );
    assertTrial(r, 20);
  });
}
