/**
 * Remembers destinations that just refused a connection or timed out, so the next deliveries to
 * them are deferred at once instead of each waiting for its own timeout (and the zone does not
 * hammer a host that is down). Per worker process, in memory; entries expire on their own.
 */
export class Circuit {
  private readonly downUntil = new Map<string, number>();

  constructor(
    private readonly holdMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  isOpen(address: string, port: number): boolean {
    if (this.holdMs <= 0) return false;
    const key = `${address}|${port}`;
    const until = this.downUntil.get(key);
    if (until === undefined) return false;
    if (until <= this.now()) {
      this.downUntil.delete(key);
      return false;
    }
    return true;
  }

  trip(address: string, port: number): void {
    if (this.holdMs <= 0) return;
    if (this.downUntil.size > 10_000) this.downUntil.clear(); // bounded: forgetting is safe
    this.downUntil.set(`${address}|${port}`, this.now() + this.holdMs);
  }

  reset(address: string, port: number): void {
    this.downUntil.delete(`${address}|${port}`);
  }
}
