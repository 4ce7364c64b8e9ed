/**
 * Loaded into a child `sluice run` with `node --import` (sluice-child.ts, option loopProbe): it
 * measures the child's event-loop delay (perf_hooks' histogram, 10 ms resolution) and writes the
 * percentiles since the last reset, in ms, to the file LOOP_PROBE_FILE names, every 100 ms.
 * SIGUSR2 resets the histogram. So a test can judge the lag of one phase of a run (a crowd held,
 * say) in the process under test, not only its own.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const file = process.env.LOOP_PROBE_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let resets = 0;
  const ms = (ns: number) => ns / 1e6;
  const write = () => {
    const count = histogram.count;
    const snapshot = count
      ? { resets, count, p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max) }
      : { resets, count, p50: 0, p99: 0, max: 0 };
    // whole or not at all: the test may read at any moment
    writeFileSync(`${file}.tmp`, JSON.stringify(snapshot));
    renameSync(`${file}.tmp`, file);
  };
  process.on('SIGUSR2', () => {
    histogram.reset();
    resets++;
    write();
  });
  setInterval(write, 100).unref();
  write();
}
