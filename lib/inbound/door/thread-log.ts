/**
 * Logging from the SMTP door's thread: a pino logger there writes its JSON lines to the master
 * (protocol.ts `log`), which logs each through its own logger, so the door's events (the
 * blocklist's, the listener's errors) reach the one log with the master's fields and format.
 */
import { pino, type Logger } from 'pino';

/** The thread's logger: each line goes to `send`; nothing below `level` is even built. */
export function threadLogger(level: string, send: (line: string) => void): Logger {
  return pino(
    { level, base: null, timestamp: false, formatters: { level: (label: string) => ({ level: label }) } },
    { write: (line: string) => send(line) },
  );
}

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

/** Logs one line the thread wrote, at its level, with its fields. */
export function relogLine(logger: Logger, line: string): void {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return logger.warn({ line: line.slice(0, 500) }, 'the inbound SMTP door wrote a log line that is not JSON');
  }
  const { level, msg, ...fields } = record;
  const name = typeof level === 'string' && LEVELS.has(level) ? (level as 'info') : 'info';
  logger[name](fields, typeof msg === 'string' ? msg : '');
}
