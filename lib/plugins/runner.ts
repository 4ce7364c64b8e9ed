/**
 * Runs hook handlers: in registration order (plugins in config order), one after another, each
 * within a time limit, each called once per event.
 *
 * - `run` is for gate hooks: an error with a `responseCode` is a deliberate rejection and reaches
 *   the client as that reply; any other throw, or a timeout, is logged with the plugin's name and
 *   becomes a temporary failure (451 4.3.0). The first failure stops the chain. Never a crash.
 * - `notify` is for notification hooks: every handler runs; a throw or a timeout is logged and
 *   swallowed, so a plugin can never break what it is told about.
 *
 * A handler that times out keeps running in the background (a promise cannot be cancelled); its
 * result is ignored.
 */
import type { Logger } from 'pino';
import { SmtpError, asSmtpError } from '../errors/smtp-error.js';
import { isHookName, type HookHandler, type HookMap, type HookName } from './hooks.js';

interface Registered {
  plugin: string;
  handler: (...args: unknown[]) => unknown;
}

export class HookRunner {
  private readonly handlers = new Map<HookName, Registered[]>();

  constructor(
    private readonly logger: Logger,
    private readonly timeoutMs: number,
  ) {}

  add<N extends HookName>(name: N, plugin: string, handler: HookHandler<N>): void {
    if (!isHookName(name)) throw new Error(`plugin ${plugin}: unknown hook "${String(name)}"`);
    if (typeof handler !== 'function') throw new Error(`plugin ${plugin}: the handler for "${name}" is not a function`);
    let list = this.handlers.get(name);
    if (!list) this.handlers.set(name, (list = []));
    list.push({ plugin, handler: handler as (...args: unknown[]) => unknown });
  }

  has(name: HookName): boolean {
    return (this.handlers.get(name)?.length ?? 0) > 0;
  }

  /** Runs every handler of a gate hook; throws an SmtpError when one rejects or fails. */
  async run<N extends HookName>(name: N, ...args: HookMap[N]): Promise<void> {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const { plugin, handler } of list) {
      try {
        await this.call(handler, args);
      } catch (err) {
        let failed = false;
        const smtpErr = asSmtpError(err, () => {
          failed = true;
          this.logger.error({ event: 'HOOK_FAILED', hook: name, plugin, err }, `hook ${name} of plugin ${plugin} failed`);
          return SmtpError.hookFailed();
        });
        if (!failed) this.logger.debug({ event: 'HOOK_REJECTED', hook: name, plugin, code: smtpErr.responseCode }, `hook ${name} of plugin ${plugin} rejected: ${smtpErr.message}`);
        throw smtpErr;
      }
    }
  }

  /** Runs every handler of a notification hook; never throws. */
  async notify<N extends HookName>(name: N, ...args: HookMap[N]): Promise<void> {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const { plugin, handler } of list) {
      try {
        await this.call(handler, args);
      } catch (err) {
        this.logger.error({ event: 'HOOK_FAILED', hook: name, plugin, err }, `hook ${name} of plugin ${plugin} failed`);
      }
    }
  }

  private call(handler: Registered['handler'], args: readonly unknown[]): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    const work = Promise.resolve().then(() => handler(...args));
    work.catch(() => undefined); // a late failure after the timeout is not an unhandled rejection
    return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
  }
}
