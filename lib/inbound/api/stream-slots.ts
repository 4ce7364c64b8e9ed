/**
 * Long-lived connections of the inbox API: event streams, WebSockets and waiting `wait`
 * requests. Streams per client are capped (at most `perClient` at once from one IP, an IPv6
 * client by its /64), so that one client cannot hold the API's connections; and every one of them
 * can be ended at once when Sluice stops, so that a stop never waits for a client that would
 * otherwise keep listening.
 */
import { clientKey } from '../../config/net.js';

export class StreamSlots {
  private readonly open = new Map<string, number>();
  private readonly closers = new Set<() => void>();

  constructor(private readonly perClient: number) {}

  /**
   * A stream slot for `ip`, as the function that gives it back; undefined when the client has
   * none left. `close` ends the stream when Sluice stops.
   */
  take(ip: string, close: () => void): (() => void) | undefined {
    const key = clientKey(ip);
    const n = this.open.get(key) ?? 0;
    if (n >= this.perClient) return undefined;
    this.open.set(key, n + 1);
    const untrack = this.track(close);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      untrack();
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }

  /** Ends this connection when Sluice stops (a waiter: no cap); returns the function that forgets it. */
  track(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  /** Ends every stream and waiter now. */
  closeAll(): void {
    for (const close of [...this.closers]) close();
    this.closers.clear();
  }

  /** Streams open now, in all (metrics). */
  get total(): number {
    let n = 0;
    for (const v of this.open.values()) n += v;
    return n;
  }
}
