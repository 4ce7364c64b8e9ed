/**
 * A pino logger that keeps its lines in memory, for tests that check what was logged.
 */
import { pino, type Logger } from 'pino';

export interface CapturedLog {
  logger: Logger;
  lines: Record<string, unknown>[];
  /** lines whose `event` is this */
  events(event: string): Record<string, unknown>[];
}

export function captureLog(level = 'debug'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { logger, lines, events: (event) => lines.filter((l) => l.event === event) };
}
