/**
 * Runs hook handlers: in registration order, one after another, each within a time limit. An
 * error with a `responseCode` is a deliberate rejection and reaches the client as that reply; any
 * other throw, or a timeout, is logged with the plugin's name and becomes a temporary failure
 * (451), never a crash.
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

  /** Runs every handler of `name`; throws an SmtpError when one rejects or fails. */
  async run<N extends HookName>(name: N, ...args: HookMap[N]): Promise<void> {
    const list = this.handlers.get(name);
    if (!list) return;
    for (const { plugin, handler } of list) {
      try {
        await this.withTimeout(Promise.resolve().then(() => handler(...args)));
      } catch (err) {
        throw asSmtpError(err, () => {
          this.logger.error({ event: 'HOOK_FAILED', hook: name, plugin, err }, `hook ${name} of plugin ${plugin} failed`);
          return SmtpError.hookFailed();
        });
      }
    }
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer)) as Promise<T>;
  }
}
