/**
 * Operator actions on waiting deliveries: make them due now ("postqueue -i" for one message).
 * Rows under lease are left alone: they are being tried at this moment.
 */
import { QueueBatch } from './batch.js';
import type { Scheduler } from './scheduler.js';
import type { QueueStore } from './store.js';

/** Makes every waiting row of message `id` due now. Returns how many rows moved, or undefined
 * when there is no such message. */
export async function retryNow(store: QueueStore, scheduler: Scheduler, id: string, nowMs = Date.now()): Promise<number | undefined> {
  if (!(await store.getMeta(id))) return undefined;
  const rows = await store.getRows(id);
  const batch = new QueueBatch();
  const zones = new Set<string>();
  let moved = 0;
  for (const row of rows) {
    // a held row waits for its release (admin.ts), not for a retry
    if (row.status === 'held' || row.due <= nowMs || scheduler.isLeased(row.id, row.seq)) continue;
    batch.moveRow(row, { ...row, due: nowMs });
    zones.add(row.zone);
    moved++;
  }
  if (moved) await store.write(batch);
  for (const zone of zones) scheduler.wake(zone);
  return moved;
}
