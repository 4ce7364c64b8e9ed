/**
 * New-message events per inbox, for the live routes (wait, server-sent events, WebSocket): a
 * subscriber of an inbox is told of every message stored and parsed for it, in the order they
 * were parsed, with the message's listing line. Nothing is kept here: a subscriber that was away
 * asks the store for what it missed (ids sort by arrival, so "newer than the last id I saw" is
 * exact).
 *
 * Only subscribers of an inbox hear of its mail. A publish costs one map lookup per inbox of the
 * message when nobody listens.
 */
import type { InboundEnvelope, InboxEntry, MessageSummary } from './store/types.js';

export interface InboxEvent {
  inbox: string;
  envelope: InboundEnvelope;
  entry: InboxEntry;
  summary: MessageSummary | null;
}

export type InboxListener = (event: InboxEvent) => void;

export class InboxEvents {
  private readonly listeners = new Map<string, Set<InboxListener>>();
  private count = 0;

  /** Listens to one inbox; returns the function that stops it. */
  subscribe(inbox: string, listener: InboxListener): () => void {
    let set = this.listeners.get(inbox);
    if (!set) this.listeners.set(inbox, (set = new Set()));
    set.add(listener);
    this.count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.count--;
      set.delete(listener);
      if (!set.size && this.listeners.get(inbox) === set) this.listeners.delete(inbox);
    };
  }

  /** Does anyone listen to one of these inboxes (then its message is parsed first)? */
  watched(inboxes: readonly string[]): boolean {
    return inboxes.some((inbox) => this.listeners.has(inbox));
  }

  /** Subscriptions open now (metrics). */
  get subscriptions(): number {
    return this.count;
  }

  /** Tells the listeners of each of the message's inboxes. */
  publish(envelope: InboundEnvelope, summary: MessageSummary | null): void {
    for (const inbox of envelope.inboxes) {
      const set = this.listeners.get(inbox);
      if (!set?.size) continue;
      const event = eventFor(inbox, envelope, summary);
      for (const listener of [...set]) listener(event);
    }
  }
}

/** The event of a message for one of its inboxes: its entry as the commit wrote it. */
export function eventFor(inbox: string, envelope: InboundEnvelope, summary: MessageSummary | null): InboxEvent {
  const rcpts = envelope.rcpts.filter((r) => r.inbox === inbox);
  const entry: InboxEntry = { rcpts: rcpts.map((r) => r.address), tags: [...new Set(rcpts.map((r) => r.tag).filter(Boolean))], read: false };
  return { inbox, envelope, entry, summary };
}
