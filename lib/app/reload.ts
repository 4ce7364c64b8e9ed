/**
 * A config reload (SIGHUP, `systemctl reload`): read the config again, check it as a start would,
 * apply what can change while running (config/reload-plan.ts) and say in one log line what
 * changed, what was applied and what needs a restart.
 *
 * Invariants:
 * - A config that would not start Sluice changes nothing: RELOAD_FAILED names its problems and
 *   the running config stays.
 * - The listeners are never touched: no SMTP session or API request is dropped by a reload.
 * - The line names key paths, never values, so a changed secret is not printed.
 * - Reloads run one at a time: a signal that comes during one is queued behind it.
 */
import { ConfigError, loadConfig } from '../config/load.js';
import { planReload } from '../config/reload-plan.js';
import { loadDkimKeys } from '../deliver/dkim/keys.js';
import { loadExtraCa } from '../deliver/tls/trust.js';
import type { Logger } from '../log/logger.js';
import type { Master } from './master.js';

export class Reloader {
  private last: Promise<void> = Promise.resolve();

  constructor(
    private readonly master: Master,
    private readonly appDir: string,
    private readonly logger: Logger,
  ) {}

  /** Queues a reload; resolves when it (and any before it) is done. Never rejects. */
  reload(): Promise<void> {
    this.last = this.last.then(() => this.once());
    return this.last;
  }

  private async once(): Promise<void> {
    let problems: string[];
    try {
      const { config } = loadConfig({ appDir: this.appDir });
      // what the workers would load on start: a bad key file must not leave them crash-looping
      loadDkimKeys(config.dkim.keys);
      loadExtraCa(config.delivery.ca);
      const plan = planReload(this.master.config, config);
      const restart = plan.restart.length ? `; needs a restart: ${plan.restart.join(', ')}` : '';
      const summary = plan.changed.length ? `applied: ${plan.applied.join(', ') || 'nothing'}${restart}` : 'nothing changed';
      // said before the new log level applies, so a quieter level does not hide the line itself;
      // a change still waiting for a restart is a warning: someone has to act on it
      this.logger[plan.restart.length ? 'warn' : 'info'](
        { event: 'RELOADED', changed: plan.changed, applied: plan.applied, restartNeeded: plan.restart, workersReplaced: plan.appliers.has('workers') },
        `config reloaded: ${summary}`,
      );
      await this.master.applyReload(plan).catch((err: unknown) => this.logger.error({ err }, 'error while replacing the delivery workers'));
      return;
    } catch (err) {
      problems = err instanceof ConfigError ? err.problems : [(err as Error).message ?? String(err)];
    }
    this.logger.error({ event: 'RELOAD_FAILED', problems }, `config not reloaded, the running config stays: ${problems.join('; ')}`);
  }
}
