/**
 * A set of queue changes written in one atomic batch, built from typed steps. The steps are the
 * only places that know which keys a change touches:
 *
 * - a row is stored with exactly one schedule key while it is pending (`putRow`);
 * - a row moves (a retry later, a retry now) by deleting its old schedule key, putting the row and
 *   putting its new schedule key, in the same batch (`moveRow`);
 * - a finished row leaves with its schedule key (`removeRow`);
 * - a held row trades its schedule key for a hold key (`holdRow`) and back (`releaseRow`): a row
 *   has one of the two, never both, and a held row is found by no scan of the scheduler;
 * - a finished message leaves with its metadata and every body chunk (`removeMessage`).
 *
 * The batch is written by QueueStore.write; its `ops` may also be carried by another write that
 * must stand or fall with it (a bounce's DSN is committed with the removal of the bounced row).
 */
import type { BatchOp } from '../store/group-commit.js';
import { encodeMeta, encodeRow, encodeScheduleValue, scheduleKeyOf } from './codec.js';
import { keys } from './keys.js';
import type { DeliveryRow, MessageMeta } from './types.js';

export class QueueBatch {
  readonly ops: BatchOp[] = [];

  get size(): number {
    return this.ops.length;
  }

  putMeta(meta: MessageMeta): this {
    this.ops.push({ type: 'put', key: keys.meta(meta.id), value: encodeMeta(meta) });
    return this;
  }

  putRow(row: DeliveryRow): this {
    this.ops.push({ type: 'put', key: keys.row(row.id, row.seq), value: encodeRow(row) });
    this.ops.push({ type: 'put', key: scheduleKeyOf(row), value: encodeScheduleValue(row) });
    return this;
  }

  /** `to` replaces `from` (same id and seq); its schedule key follows its due time. */
  moveRow(from: DeliveryRow, to: DeliveryRow): this {
    this.ops.push({ type: 'del', key: scheduleKeyOf(from) });
    this.ops.push({ type: 'put', key: keys.row(to.id, to.seq), value: encodeRow(to) });
    this.ops.push({ type: 'put', key: scheduleKeyOf(to), value: encodeScheduleValue(to) });
    return this;
  }

  removeRow(row: DeliveryRow): this {
    this.ops.push({ type: 'del', key: keys.row(row.id, row.seq) });
    this.ops.push({ type: 'del', key: row.status === 'held' ? keys.hold(row.zone, row.id, row.seq) : scheduleKeyOf(row) });
    return this;
  }

  /** `to` (status held) replaces the pending row `from`: out of the schedule, into the hold index. */
  holdRow(from: DeliveryRow, to: DeliveryRow): this {
    this.ops.push({ type: 'del', key: scheduleKeyOf(from) });
    this.ops.push({ type: 'put', key: keys.row(to.id, to.seq), value: encodeRow(to) });
    this.ops.push({ type: 'put', key: keys.hold(to.zone, to.id, to.seq), value: encodeScheduleValue(to) });
    return this;
  }

  /** `to` (pending again) replaces the held row `from`: out of the hold index, into the schedule. */
  releaseRow(from: DeliveryRow, to: DeliveryRow): this {
    this.ops.push({ type: 'del', key: keys.hold(from.zone, from.id, from.seq) });
    this.ops.push({ type: 'put', key: keys.row(to.id, to.seq), value: encodeRow(to) });
    this.ops.push({ type: 'put', key: scheduleKeyOf(to), value: encodeScheduleValue(to) });
    return this;
  }

  /**
   * A whole body at once, chunk by chunk (numbered from 0). Ingest streams bodies through a
   * BodyWriter instead; this is for writers that already hold the chunks (the queue fixture).
   */
  putBody(id: string, chunks: readonly Buffer[]): this {
    chunks.forEach((chunk, n) => this.ops.push({ type: 'put', key: keys.body(id, n), value: chunk }));
    return this;
  }

  /** The metadata and body chunks 0..chunks-1 (numbered, so no iterator is needed to find them). */
  removeMessage(id: string, chunks: number): this {
    this.ops.push({ type: 'del', key: keys.meta(id) });
    for (let n = 0; n < chunks; n++) this.ops.push({ type: 'del', key: keys.body(id, n) });
    return this;
  }

  /** Drops a schedule key whose row or message is gone (an index entry left behind). */
  removeSchedule(entry: Pick<DeliveryRow, 'zone' | 'due' | 'id' | 'seq'>): this {
    this.ops.push({ type: 'del', key: scheduleKeyOf(entry) });
    return this;
  }
}
