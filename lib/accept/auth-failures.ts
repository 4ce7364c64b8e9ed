/**
 * Failed SMTP logins per client address, across connections and listeners: past `max` failures
 * within `windowMs` of the first one, an address is blocked until that window ends (its logins
 * get 421 at once and cost no hashing). IPv6 addresses count per /64, the block a single host
 * usually has. At most MAX_TRACKED addresses are remembered; beyond, the oldest entry goes.
 */
import ipaddr from 'ipaddr.js';

const MAX_TRACKED = 100_000;

interface Entry {
  failures: number;
  since: number;
}

export class AuthFailures {
  private readonly byAddress = new Map<string, Entry>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Whether logins from `ip` are refused now. */
  blocked(ip: string | undefined): boolean {
    const entry = this.current(ip);
    return entry !== undefined && entry.failures >= this.max;
  }

  /** Counts a failure; returns the count in the current window (the one that reaches max blocks). */
  note(ip: string | undefined): number {
    const key = keyOf(ip);
    let entry = this.current(ip);
    if (!entry) {
      if (this.byAddress.size >= MAX_TRACKED) this.byAddress.delete(this.byAddress.keys().next().value!);
      entry = { failures: 0, since: this.now() };
      this.byAddress.set(key, entry);
    }
    entry.failures++;
    return entry.failures;
  }

  /** When the block of `ip` ends (ms), for the log. */
  until(ip: string | undefined): number {
    return (this.current(ip)?.since ?? this.now()) + this.windowMs;
  }

  private current(ip: string | undefined): Entry | undefined {
    const key = keyOf(ip);
    const entry = this.byAddress.get(key);
    if (entry && this.now() - entry.since >= this.windowMs) {
      this.byAddress.delete(key);
      return undefined;
    }
    return entry;
  }
}

function keyOf(ip: string | undefined): string {
  if (!ip || !ipaddr.isValid(ip)) return ip ?? '';
  const parsed = ipaddr.process(ip);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  return `${(parsed as ipaddr.IPv6).toNormalizedString().split(':').slice(0, 4).join(':')}::/64`;
}
