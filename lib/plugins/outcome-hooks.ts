/**
 * The main-side hooks about delivery results, fed by the queue's outcome stage as one more
 * OutcomeListener (beside the events webhook; DSNs are written with the outcome itself), so
 * lib/queue needs no knowledge of plugins:
 *
 *   queue:outcome   every recorded result: delivered, deferred, bounced (per recipient)
 *   queue:release   a row left the queue for good: delivered or bounced here; deleted by an
 *                   operator in the DELETE /message/:id route (releaseDeleted below)
 *
 * Both are notifications: they run after the queue change is durable, a failing handler is
 * logged and changes nothing.
 */
import type { FinishedRow, OutcomeListener } from '../queue/outcomes.js';
import type { DeliveryRow, MessageMeta } from '../queue/types.js';
import type { ReleaseReason } from './hooks.js';
import type { HookRunner } from './runner.js';

export class OutcomeHooks implements OutcomeListener {
  constructor(private readonly hooks: HookRunner) {}

  /** Only worth adding to the outcome listeners when a plugin listens. */
  get wanted(): boolean {
    return this.hooks.has('queue:outcome') || this.hooks.has('queue:release');
  }

  async delivered(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    await this.tell(rows, 'delivered');
  }

  async bounced(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    await this.tell(rows, 'bounced');
  }

  async deferred(_meta: MessageMeta, rows: FinishedRow[]): Promise<void> {
    await this.tell(rows, 'deferred');
  }

  /** "delayed" notices are about rows that also arrive through deferred(): nothing to add. */
  async delayed(): Promise<void> {}

  private async tell(rows: FinishedRow[], result: 'delivered' | 'deferred' | 'bounced'): Promise<void> {
    for (const { row, result: r } of rows) {
      await this.hooks.notify('queue:outcome', {
        id: row.id,
        seq: row.seq,
        zone: row.zone,
        recipient: row.recipient,
        domain: row.domain,
        result,
        response: r.response,
        status: r.status,
        category: r.category,
        mx: r.mx,
      });
      if (result !== 'deferred') await releaseRow(this.hooks, row, result, r.response);
    }
  }
}

/** queue:release for rows an operator deleted (DELETE /message/:id). */
export async function releaseDeleted(hooks: HookRunner, rows: readonly DeliveryRow[]): Promise<void> {
  for (const row of rows) await releaseRow(hooks, row, 'deleted');
}

function releaseRow(hooks: HookRunner, row: DeliveryRow, reason: ReleaseReason, response?: string): Promise<void> {
  return hooks.notify('queue:release', row.zone, {
    id: row.id,
    seq: row.seq,
    recipient: row.recipient,
    domain: row.domain,
    reason,
    ...(response !== undefined ? { response } : {}),
  });
}
