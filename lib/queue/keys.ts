/**
 * Every LevelDB key layout of the queue, in one place, each family with an encode/decode pair.
 * Keys are UTF-8 strings ordered byte-wise, so numbers are fixed-width hex or decimal and parts
 * that may hold ':' are URI-encoded.
 *
 *   m:<id>                          message metadata (JSON)
 *   b:<id>:<chunk>                  body chunk n (raw bytes), chunk = 6 hex digits
 *   d:<id>:<seq>                    delivery row for one recipient (JSON), seq = 4 hex digits
 *   s:<zone>:<due>:<id>:<seq>       scheduling index: row due at <due> (ms, 13 digits); value is
 *                                   the row's domain, so the scheduler can apply domain limits
 *                                   without reading the row
 *   h:<zone>:<id>:<seq>             hold index: a held row (an operator parked it); value is the
 *                                   row's domain, as for s:. A held row has no s: key, so the
 *                                   scheduler never sees it
 *   x:<kind>:<value>                suppression list entry (kind a: an address, d: a domain;
 *                                   value URI-encoded, lower-case); value JSON (suppression.ts)
 *
 * A message is visible once its m: key exists; b: keys without an m: key are leftovers of an
 * interrupted ingest and are collected. Every row has exactly one s: key while pending, or exactly
one h: key while held, never both.
 */

export const PREFIX = {
  meta: 'm:',
  body: 'b:',
  row: 'd:',
  schedule: 's:',
  hold: 'h:',
  suppression: 'x:',
} as const;

const hex = (n: number, width: number) => n.toString(16).padStart(width, '0');
const enc = (s: string) => encodeURIComponent(s);

export const keys = {
  meta: (id: string) => `m:${id}`,
  body: (id: string, chunk: number) => `b:${id}:${hex(chunk, 6)}`,
  bodyRange: (id: string) => ({ gte: `b:${id}:`, lt: `b:${id};` }),
  row: (id: string, seq: number) => `d:${id}:${hex(seq, 4)}`,
  rowRange: (id: string) => ({ gte: `d:${id}:`, lt: `d:${id};` }),
  schedule: (zone: string, dueMs: number, id: string, seq: number) =>
    `s:${enc(zone)}:${String(Math.max(0, Math.floor(dueMs))).padStart(13, '0')}:${id}:${hex(seq, 4)}`,
  /** every row of a zone that is due at or before `nowMs` */
  scheduleDue: (zone: string, nowMs: number) => ({
    gte: `s:${enc(zone)}:`,
    lte: `s:${enc(zone)}:${String(Math.max(0, Math.floor(nowMs))).padStart(13, '0')};`,
  }),
  /** rows of a zone due after `afterMs`, to find when to look again */
  scheduleAfter: (zone: string, afterMs: number) => ({
    gt: `s:${enc(zone)}:${String(Math.max(0, Math.floor(afterMs))).padStart(13, '0')};`,
    lt: `s:${enc(zone)};`,
  }),
  hold: (zone: string, id: string, seq: number) => `h:${enc(zone)}:${id}:${hex(seq, 4)}`,
  suppression: (kind: SuppressionKind, value: string) => `x:${kind === 'address' ? 'a' : 'd'}:${enc(value)}`,
  allOf: (prefix: string) => ({ gte: prefix, lt: prefix.slice(0, -1) + ';' }),
};

export interface ScheduleKey {
  zone: string;
  dueMs: number;
  id: string;
  seq: number;
}

export function decodeScheduleKey(key: string): ScheduleKey {
  const [tag, zone, due, id, seq] = key.split(':');
  if (tag !== 's' || zone === undefined || due === undefined || id === undefined || seq === undefined) {
    throw new Error(`not a schedule key: ${key}`);
  }
  return { zone: decodeURIComponent(zone), dueMs: Number(due), id, seq: parseInt(seq, 16) };
}

export function decodeRowKey(key: string): { id: string; seq: number } {
  const [tag, id, seq] = key.split(':');
  if (tag !== 'd' || id === undefined || seq === undefined) throw new Error(`not a row key: ${key}`);
  return { id, seq: parseInt(seq, 16) };
}

export function decodeBodyKey(key: string): { id: string; chunk: number } {
  const [tag, id, chunk] = key.split(':');
  if (tag !== 'b' || id === undefined || chunk === undefined) throw new Error(`not a body key: ${key}`);
  return { id, chunk: parseInt(chunk, 16) };
}

export function decodeHoldKey(key: string): { zone: string; id: string; seq: number } {
  const [tag, zone, id, seq] = key.split(':');
  if (tag !== 'h' || zone === undefined || id === undefined || seq === undefined) throw new Error(`not a hold key: ${key}`);
  return { zone: decodeURIComponent(zone), id, seq: parseInt(seq, 16) };
}

export type SuppressionKind = 'address' | 'domain';

export function decodeSuppressionKey(key: string): { kind: SuppressionKind; value: string } {
  const [tag, kind, value] = key.split(':');
  if (tag !== 'x' || (kind !== 'a' && kind !== 'd') || value === undefined) throw new Error(`not a suppression key: ${key}`);
  return { kind: kind === 'a' ? 'address' : 'domain', value: decodeURIComponent(value) };
}

/** The row key of `id`/`seq` as a listing cursor goes on from it (rows sort by id, then seq). */
export const rowCursorKey = (id: string, seq: number) => keys.row(id, seq);
