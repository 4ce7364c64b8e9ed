/**
 * Entry point of a forked delivery worker. Waits for its init message from the master over IPC,
 * then runs until done. The worker leaves when the master goes (IPC disconnect).
 */
import { runWorker, type WorkerInit } from './worker.js';

let resolveStop: () => void = () => undefined;
const stopSignal = new Promise<void>((resolve) => (resolveStop = resolve));

process.on('message', (m: unknown) => {
  const msg = m as { type?: string };
  if (msg.type === 'init') {
    runWorker(m as WorkerInit, stopSignal).then(
      (code) => process.exit(code),
      (err: unknown) => {
        console.error(`sluice worker: ${(err as Error).stack ?? String(err)}`);
        process.exit(1);
      },
    );
  } else if (msg.type === 'stop') {
    resolveStop();
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => resolveStop());
// the master decides; Ctrl-C or a closed terminal reaches it too (Node's default would exit at once)
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
