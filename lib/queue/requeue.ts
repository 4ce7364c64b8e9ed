/**
 * Operator actions on waiting deliveries: make them due now ("postqueue -i" for one message).
 * Rows under lease are left alone: they are being tried at this moment.
 */
import type { BatchOp } from '../store/group-commit.js';
import { keys } from './keys.js';
import type { Scheduler } from './scheduler.js';
import type { QueueStore } from './store.js';

/** Makes every waiting row of message `id` due now. Returns how many rows moved, or undefined
 * when there is no such message. */
export async function retryNow(store: QueueStore, scheduler: Scheduler, id: string, nowMs = Date.now()): Promise<number | undefined> {
  if (!(await store.getMeta(id))) return undefined;
  const rows = await store.getRows(id);
  const ops: BatchOp[] = [];
  const zones = new Set<string>();
  for (const row of rows) {
    if (row.due <= nowMs || scheduler.isLeased(row.id, row.seq)) continue;
    ops.push({ type: 'del', key: keys.schedule(row.zone, row.due, row.id, row.seq) });
    const next = { ...row, due: nowMs };
    ops.push({ type: 'put', key: keys.row(row.id, row.seq), value: Buffer.from(JSON.stringify(next)) });
    ops.push({ type: 'put', key: keys.schedule(row.zone, nowMs, row.id, row.seq), value: Buffer.from(row.domain) });
    zones.add(row.zone);
  }
  if (ops.length) await store.commit(ops);
  for (const zone of zones) scheduler.wake(zone);
  return ops.length / 3;
}
