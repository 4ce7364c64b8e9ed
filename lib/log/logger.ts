/**
 * Structured logging through pino. Every state change of a message is one event with a stable
 * code from events.ts, so operators can grep and alert on them.
 *
 * Every line carries `hostname` and `pid` (several nodes may write to one collector) and the
 * level by name. The format is JSON lines, or readable lines (pretty.ts) when `format` is
 * "pretty", or "auto" and stdout is a terminal: the two carry the same fields.
 */
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogEvent } from './events.js';
import { prettyDestination } from './pretty.js';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

/** "auto" becomes "pretty" when stdout is a terminal (a person reads it), else "json". */
export function resolveLogFormat(format: LogFormat, isTty = Boolean(process.stdout.isTTY)): 'json' | 'pretty' {
  return format === 'auto' ? (isTty ? 'pretty' : 'json') : format;
}

export function createLogger(level: string, bindings: Record<string, unknown> = {}, format: LogFormat = 'json', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { pid: process.pid, hostname: hostname(), ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (resolveLogFormat(format) === 'pretty') return pino(options, prettyDestination(destination ?? process.stdout));
  return destination ? pino(options, destination) : pino(options);
}

/** Logs one message event with its stable code. */
export function logEvent(logger: Logger, event: LogEvent, fields: Record<string, unknown>, msg?: string): void {
  const level = event === 'STORE_FAILED' || event === 'DROPPED' || event === 'RECEIVE_FAILED' ? 'warn' : 'info';
  // checked first so a per-message event below the level costs no object building
  if (!logger.isLevelEnabled(level)) return;
  logger[level]({ event, ...fields }, msg ?? event);
}
