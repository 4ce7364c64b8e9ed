/**
 * A zone's wake-up for its pump (scheduler.ts): at most one timer per zone, set for the earliest
 * time anyone wanted. The pump asks for a wake-up when rows come due later, when a scan stopped at
 * its budget, after a failed pass, and, before it rests with workers waiting, for when the next
 * row on disk is due or a domain limit may ease (`arm`).
 *
 * Invariant: a later wish never pushes back an earlier one; once stopped (the scheduler closed),
 * no timer is set again.
 */
import type { Clock } from './clock.js';

/** Even with nothing due, look again this often (a safety net for missed wake-ups). */
export const IDLE_RECHECK_MS = 5000;
/** `arm` never wakes sooner than this: a row due now is left to the pass that is running. */
export const MIN_ARM_WAIT_MS = 10;

export type ZoneTimerState = { kind: 'unset' } | { kind: 'set'; atMs: number; cancel: () => void } | { kind: 'stopped' };

export class ZoneTimer {
  private state: ZoneTimerState = { kind: 'unset' };

  constructor(
    private readonly clock: Clock,
    /** the wake-up itself: the zone's disk is looked at again */
    private readonly fire: () => void,
  ) {}

  /** When the timer fires, if it is set. */
  get atMs(): number | undefined {
    return this.state.kind === 'set' ? this.state.atMs : undefined;
  }

  /** Wakes at `atMs`, unless a wake-up at that time or sooner is set already. */
  wakeAt(atMs: number): void {
    if (this.state.kind === 'stopped') return;
    if (this.state.kind === 'set') {
      if (this.state.atMs <= atMs) return;
      this.state.cancel();
    }
    const cancel = this.clock.after(atMs - this.clock.now(), () => {
      this.state = { kind: 'unset' };
      this.fire();
    });
    this.state = { kind: 'set', atMs, cancel };
  }

  wakeIn(ms: number): void {
    this.wakeAt(this.clock.now() + ms);
  }

  /**
   * Sets the wake-up for when the next row is due (`nextDue`, read from disk) or a domain limit
   * may ease (`limitsEase`), at the latest IDLE_RECHECK_MS from now.
   */
  async arm(nextDue: () => Promise<number | undefined>, limitsEase: () => number | undefined): Promise<void> {
    const now = this.clock.now();
    let next = now + IDLE_RECHECK_MS;
    const due = await nextDue();
    if (due !== undefined) next = Math.min(next, due);
    const eases = limitsEase();
    if (eases !== undefined) next = Math.min(next, eases);
    this.wakeAt(Math.max(next, now + MIN_ARM_WAIT_MS));
  }

  /** The scheduler closed: no wake-up from now on. */
  stop(): void {
    if (this.state.kind === 'set') this.state.cancel();
    this.state = { kind: 'stopped' };
  }
}
