/**
 * Structured logging: JSON lines through pino. Every state change of a message is one event with
 * a stable code from events.ts, so operators can grep and alert on them.
 */
import { pino, type Logger } from 'pino';
import type { LogEvent } from './events.js';

export type { Logger };

export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings }, timestamp: pino.stdTimeFunctions.isoTime });
}

/** Logs one message event with its stable code. */
export function logEvent(logger: Logger, event: LogEvent, fields: Record<string, unknown>, msg?: string): void {
  const level = event === 'STORE_FAILED' || event === 'DROPPED' || event === 'RECEIVE_FAILED' ? 'warn' : 'info';
  // checked first so a per-message event below the level costs no object building
  if (!logger.isLevelEnabled(level)) return;
  logger[level]({ event, ...fields }, msg ?? event);
}
