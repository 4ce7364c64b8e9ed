/**
 * Puts rows of a running queue in the states an operator meets (deferred after a failed try),
 * through the store's typed operations, the way an outcome would: a test of the admin routes
 * needs deferred rows without a destination to refuse them.
 */
import { QueueBatch } from '../../lib/queue/batch.js';
import type { QueueStore } from '../../lib/queue/store.js';

/** Row `seq` of `id` becomes deferred: one attempt, `reply` as the last reply, due in `inMs`. */
export async function deferRow(store: QueueStore, id: string, seq: number, opts: { inMs?: number; reply?: string; category?: string } = {}): Promise<void> {
  const [row] = await store.getRowsAt(id, [seq]);
  if (!row) throw new Error(`no row ${id}.${seq}`);
  const now = Date.now();
  const next = { ...row, status: 'deferred' as const, attempts: row.attempts + 1, due: now + (opts.inMs ?? 3_600_000), firstFailure: now, lastAttempt: now, lastResponse: opts.reply ?? '450 4.2.0 greylisted', category: opts.category ?? 'greylist' };
  await store.write(new QueueBatch().moveRow(row, next));
  store.counters.move(row, row.status, 'deferred');
}
