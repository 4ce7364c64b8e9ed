/**
 * `sluice run`: load the config, start the master, stop it cleanly on SIGTERM/SIGINT. Start-up
 * failures (bad config, locked or damaged queue, port in use) print one line and give a non-zero
 * exit code. This is the only place that decides the process's exit status.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { QueueOpenError } from '../queue/open.js';
import { Master } from './master.js';

/** How long a clean stop may take before the process exits anyway. */
const STOP_DEADLINE_MS = 35_000;

export async function runCommand(appDir: string): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig({ appDir });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const line of err.problems) console.error(`sluice: config error: ${line}`);
    return 78; // EX_CONFIG
  }
  const logger = createLogger(loaded.config.log.level, { role: 'master' });
  logger.info({ event: 'STARTING', files: loaded.files, appDir: loaded.appDir }, 'starting Sluice');
  const master = new Master(loaded, logger);
  try {
    await master.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      // the plugin tables are checked when the plugins load
      for (const line of err.problems) console.error(`sluice: config error: ${line}`);
      logger.fatal({ event: 'START_FAILED', problems: err.problems }, 'config error');
      return 78;
    }
    const message = err instanceof QueueOpenError ? err.message : describeStartError(err);
    console.error(`sluice: ${message}`);
    logger.fatal({ event: 'START_FAILED', err }, message);
    return 1;
  }
  logger.info({ event: 'STARTED' }, 'Sluice is running');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ event: 'STOPPING', signal }, `stopping on ${signal}`);
      const deadline = setTimeout(() => {
        logger.error({ event: 'STOP_TIMEOUT' }, 'clean stop took too long, exiting');
        resolve(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      master.stop().then(
        () => {
          clearTimeout(deadline);
          logger.info({ event: 'STOPPED' }, 'stopped');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function describeStartError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === 'EADDRINUSE') return `cannot listen on ${e.address}:${e.port}: the address is in use`;
  if (e.code === 'EACCES' && e.port !== undefined) return `cannot listen on ${e.address}:${e.port}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)`;
  if (e.code === 'ENOENT' && e.path) return `cannot read ${e.path}: no such file`;
  return e.message ?? String(err);
}
