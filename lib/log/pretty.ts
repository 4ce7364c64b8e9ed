/**
 * Readable log lines for a person at a terminal: the same records as the JSON lines, one line
 * each, as `time LEVEL [event] message key=value …`. Every field of the record is kept (hostname,
 * pid and the ids included), so nothing is lost by reading the terminal instead of the JSON.
 *
 * It is a pino destination: pino writes each record as one JSON line and this rewrites it before
 * it reaches the stream. A line that is not JSON (it cannot happen with pino) is passed on as is.
 */
import type { DestinationStream } from 'pino';

/** Fields shown in the line's head, not repeated as key=value. */
const HEAD = new Set(['time', 'level', 'event', 'msg']);

export function prettyDestination(out: { write(s: string): unknown }): DestinationStream {
  return { write: (line: string) => void out.write(formatPretty(line)) };
}

/** One JSON log line → one readable line (ending in a newline). */
export function formatPretty(jsonLine: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(jsonLine) as Record<string, unknown>;
  } catch {
    return jsonLine.endsWith('\n') ? jsonLine : `${jsonLine}\n`;
  }
  const level = String(rec.level ?? '').toUpperCase().padEnd(5);
  const head = [String(rec.time ?? ''), level];
  if (typeof rec.event === 'string') head.push(`[${rec.event}]`);
  if (rec.msg !== undefined && rec.msg !== rec.event) head.push(String(rec.msg));
  const rest = Object.entries(rec)
    .filter(([k, v]) => !HEAD.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  return `${[...head, ...rest].join(' ')}\n`;
}

/** Strings bare when they hold no space or quote, else JSON-quoted; objects as compact JSON. */
function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}
