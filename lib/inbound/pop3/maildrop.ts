/**
 * A POP3 maildrop: the snapshot of one inbox taken at login, its newest messages up to the
 * inbox's cap, numbered from 1 oldest first, with the DELE marks of the session.
 *
 * Invariants:
 * - the numbering and the sizes do not change during the session, whatever arrives or goes;
 * - DELE only marks; the marked messages leave the inbox in update(), which runs at QUIT in the
 *   TRANSACTION state and nowhere else (RFC 1939 §6): a session that ends any other way removes
 *   nothing;
 * - update() takes a message out of this inbox only (another inbox holding it keeps it).
 */
import type { Inbox } from '../inbox.js';
import { Pop3Error } from './errors.js';

export interface MaildropMessage {
  /** the message number, from 1 */
  n: number;
  /** the inbox message id (UIDL gives it) */
  id: string;
  /** bytes as received */
  size: number;
}

export class Maildrop {
  private readonly marked = new Set<number>();

  private constructor(
    /** the inbox (canonical address) */
    readonly inbox: string,
    private readonly messages: readonly MaildropMessage[],
  ) {}

  /** The newest `cap` messages of `inbox` (those with `tag` only, when one is given), oldest first. */
  static async load(inbox: Inbox, name: string, opts: { tag?: string; cap: number }): Promise<Maildrop> {
    const { items } = await inbox.list(name, { limit: opts.cap, tag: opts.tag || undefined });
    const oldestFirst = items.reverse().map((item, i) => ({ n: i + 1, id: item.envelope.id, size: item.envelope.size }));
    return new Maildrop(name, oldestFirst);
  }

  /** Messages at login, marked ones included (numbers run from 1 to this). */
  get total(): number {
    return this.messages.length;
  }

  /** Messages and bytes not marked as deleted (STAT). */
  stat(): { count: number; size: number } {
    let size = 0;
    for (const m of this.live()) size += m.size;
    return { count: this.total - this.marked.size, size };
  }

  /** The messages not marked as deleted, by number. */
  live(): MaildropMessage[] {
    return this.messages.filter((m) => !this.marked.has(m.n));
  }

  /** Message `arg` (a number as the client wrote it), unless there is none or it is marked. */
  get(arg: string): MaildropMessage {
    const n = /^\d{1,9}$/.test(arg) ? Number(arg) : 0;
    const message = n >= 1 ? this.messages[n - 1] : undefined;
    if (!message) throw Pop3Error.noSuchMessage(arg, this.total);
    if (this.marked.has(n)) throw Pop3Error.deleted(n);
    return message;
  }

  mark(arg: string): MaildropMessage {
    const message = this.get(arg);
    this.marked.add(message.n);
    return message;
  }

  /** RSET: no message is marked any more. */
  reset(): void {
    this.marked.clear();
  }

  /**
   * The UPDATE state: takes every marked message out of the inbox. A message already gone
   * (deleted through the API, expired) counts as removed; one the store failed to remove is
   * counted in `failed` and stays.
   */
  async update(inbox: Inbox): Promise<{ removed: string[]; failed: number }> {
    const removed: string[] = [];
    let failed = 0;
    for (const n of [...this.marked].sort((a, b) => a - b)) {
      const { id } = this.messages[n - 1]!;
      try {
        await inbox.removeFrom(this.inbox, id);
        removed.push(id);
      } catch {
        failed++;
      }
    }
    this.marked.clear();
    return { removed, failed };
  }
}
