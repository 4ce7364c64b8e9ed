/**
 * `sluice run`: load the config, start the master, stop it cleanly on SIGTERM/SIGINT, reload the
 * config on SIGHUP (reload.ts). Start-up
 * failures (bad config, locked or damaged queue, port in use) print one line each on stderr and
 * give a non-zero exit code. This is the only place that decides the process's exit status.
 *
 * A clean stop: the listeners close at once (new connections are refused), transactions in
 * flight finish (250) or get 421, then the queue closes; exit 0. If that takes longer than
 * STOP_DEADLINE_MS the process exits 1 anyway: a message without its 250 was never promised.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger, type LogFormat, type Logger } from '../log/logger.js';
import { QueueOpenError } from '../queue/open.js';
import { Master } from './master.js';
import { Reloader } from './reload.js';

/** How long a clean stop may take before the process exits anyway. */
export const STOP_DEADLINE_MS = 35_000;
/** While a stop runs, what it still waits for is logged this often. */
const STOP_PROGRESS_MS = 5000;

export async function runCommand(appDir: string): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig({ appDir });
  } catch (err) {
    if (!(err instanceof ConfigError)) {
      console.error(`sluice: cannot load the config: ${describeStartError(err)}`);
      return 78;
    }
    // one line per wrong key, all of them at once
    for (const line of err.problems) console.error(`sluice: config error: ${oneLine(line)}`);
    return 78; // EX_CONFIG
  }
  const logger = createLogger(loaded.config.log.level, { role: 'master' }, loaded.config.log.format as LogFormat);
  logger.info({ event: 'STARTING', files: loaded.files, appDir: loaded.appDir }, 'starting Sluice');
  const master = new Master(loaded, logger);
  let stopping = false;
  let started = false;
  const reloader = new Reloader(master, loaded.appDir, logger);
  // from here on, even while starting: a hangup must not end the process
  process.on('SIGHUP', () => onHangup(logger, reloader, started ? (stopping ? 'stopping' : 'running') : 'starting'));
  try {
    await master.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      // the plugin tables are checked when the plugins load
      for (const line of err.problems) console.error(`sluice: config error: ${line}`);
      logger.fatal({ event: 'START_FAILED', problems: err.problems }, 'config error');
      return 78;
    }
    const message = oneLine(err instanceof QueueOpenError ? err.message : describeStartError(err));
    console.error(`sluice: ${message}`);
    logger.fatal({ event: 'START_FAILED', err }, message);
    return 1;
  }
  // the stop signals are handled before STARTED is said: whoever sees that line may send one
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      if (stopping) {
        // systemd and shells may repeat the signal; the clean stop already running goes on
        logger.info({ event: 'STOPPING', signal }, `already stopping (${signal} again)`);
        return;
      }
      stopping = true;
      logger.info({ event: 'STOPPING', signal, open: master.stillOpen() }, `stopping on ${signal}`);
      // a stop that takes a while says what it still waits for, so a stuck one can be understood
      const waiting = setInterval(() => {
        const open = master.stillOpen();
        logger.info({ event: 'STOP_WAITING', ...open }, `still stopping (${open.step}): ${open.smtpSessions} SMTP sessions, ${open.leases} deliveries in flight, ${open.workers} workers`);
      }, STOP_PROGRESS_MS);
      waiting.unref();
      const deadline = setTimeout(() => {
        logger.error({ event: 'STOP_TIMEOUT' }, 'clean stop took too long, exiting');
        // whatever still holds the event loop (a stuck socket) must not keep the process alive
        process.exit(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      master.stop().then(
        () => {
          clearInterval(waiting);
          clearTimeout(deadline);
          logger.info({ event: 'STOPPED' }, 'stopped');
          resolve(0);
        },
        (err: unknown) => {
          clearInterval(waiting);
          clearTimeout(deadline);
          logger.error({ err }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  started = true;
  logger.info({ event: 'STARTED' }, 'Sluice is running');
  return stopped;
}

/**
 * SIGHUP: a daemon's "reload" (systemd's ExecReload sends it), or a terminal that closed. Node's
 * default is to exit at once, without the clean stop; here it reloads the config. While starting
 * (the parts are not all built) or stopping, a reload would race the start or the stop: the
 * signal is logged and changes nothing.
 */
function onHangup(logger: Logger, reloader: Reloader, state: 'starting' | 'running' | 'stopping'): void {
  if (state === 'running') {
    void reloader.reload();
    return;
  }
  const what = state === 'stopping' ? 'a clean stop is running' : 'Sluice is still starting; send it again once it has started';
  logger.warn({ event: 'SIGHUP', state }, `SIGHUP received, nothing reloaded: ${what}`);
}

function describeStartError(err: unknown): string {
  const e = (err ?? {}) as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e.code === 'EADDRINUSE') return `cannot listen on ${e.address}:${e.port}: the address is in use`;
  if (e.code === 'EADDRNOTAVAIL') return `cannot listen on ${e.address}:${e.port}: no such local address`;
  if (e.code === 'EACCES' && e.port !== undefined) return `cannot listen on ${e.address}:${e.port}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)`;
  if (e.code === 'ENOENT' && e.path) return `cannot read ${e.path}: no such file`;
  if ((e.code === 'EACCES' || e.code === 'EPERM') && e.path) return `cannot read ${e.path}: permission denied`;
  return typeof e.message === 'string' && e.message ? e.message : String(err);
}

/** stderr gets one line per failure, whatever the error's text holds. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
