/**
 * What tests ask of a running queue without knowing its key layout: how much it holds (to show
 * that a refused message left nothing behind) and which messages it has.
 */
import type { QueueStore } from '../../lib/queue/store.js';
import type { MessageMeta } from '../../lib/queue/types.js';

/** Every key the queue holds, all families together. */
export async function queueKeyCount(store: QueueStore): Promise<number> {
  const c = await store.census();
  return c.meta + c.body + c.row + c.schedule;
}

/** Every message's metadata, oldest first (paged through the store's bounded listing). */
export async function allMetas(store: QueueStore): Promise<MessageMeta[]> {
  const out: MessageMeta[] = [];
  for (;;) {
    let got = 0;
    for await (const meta of store.listMessages({ after: out.at(-1)?.id, limit: 1000 })) {
      out.push(meta);
      got++;
    }
    if (got < 1000) return out;
  }
}

/** How many messages the queue holds. */
export async function messageCount(store: QueueStore): Promise<number> {
  return (await store.census()).meta;
}
