/**
 * The one codec of the queue's records: how metadata and delivery rows are stored as values (JSON
 * in UTF-8), and the schedule entry a pending row keeps beside it. Every read and write of a
 * record in lib/queue goes through here, so the stored shape changes in one place.
 */
import { decodeScheduleKey, keys } from './keys.js';
import type { DeliveryRow, MessageMeta } from './types.js';

export const encodeMeta = (meta: MessageMeta): Buffer => Buffer.from(JSON.stringify(meta));
export const decodeMeta = (value: Buffer): MessageMeta => JSON.parse(value.toString('utf8')) as MessageMeta;
export const encodeRow = (row: DeliveryRow): Buffer => Buffer.from(JSON.stringify(row));
export const decodeRow = (value: Buffer): DeliveryRow => JSON.parse(value.toString('utf8')) as DeliveryRow;

/** A pending row as the scheduling index holds it: enough to group and limit without the row. */
export interface DueEntry {
  id: string;
  seq: number;
  dueMs: number;
  domain: string;
  /** where a scan that stops here goes on from (opaque to callers) */
  cursor: string;
}

/** The schedule key of a row, at its due time. */
export const scheduleKeyOf = (row: Pick<DeliveryRow, 'zone' | 'due' | 'id' | 'seq'>): string => keys.schedule(row.zone, row.due, row.id, row.seq);

/** The index value is the row's domain (the scheduler applies domain limits without the row). */
export const encodeScheduleValue = (row: Pick<DeliveryRow, 'domain'>): Buffer => Buffer.from(row.domain);

export function decodeDueEntry(key: string, value: Buffer): DueEntry {
  const { id, seq, dueMs } = decodeScheduleKey(key);
  return { id, seq, dueMs, domain: value.toString(), cursor: key };
}
