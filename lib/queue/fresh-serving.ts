/**
 * When a zone's pump (scheduler.ts) hands the fresh lane (fresh-lane.ts) to its waiting workers,
 * and what that tells it about the disk. Older work goes first: the pump scans a dirty disk before
 * it serves fresh mail (`serve`). But fresh mail that has waited FRESH_MAX_WAIT_MS goes out before
 * the scan on every other such pass, to at most half the workers asking (`serveWaited`): a backlog
 * coming due (a flush, an outage ending) must not hold new mail back until it is drained, nor may a
 * stream of new mail starve the backlog (Postfix's queue manager alternates between its incoming
 * and deferred queues for the same reason). Below that wait, older work goes first, so rows given
 * back a moment ago still precede mail queued after them.
 *
 * Rows whose domain may not start now go back to the disk (the lane's `serve`); the zone's disk
 * state records it, so a freed slot makes the pump scan for them.
 */
import type { FreshLane, FreshServe } from './fresh-lane.js';
import type { ServingDeps, Waiter, ZoneState } from './zone-state.js';

/** How long fresh mail waits at most before it may go ahead of older work on disk. */
export const FRESH_MAX_WAIT_MS = 500;

export interface FreshServingOptions extends ServingDeps {
  lane: FreshLane;
}

/** The part of a zone's state the fresh path reads and marks. */
export type FreshServingState = Pick<ZoneState, 'waiters' | 'disk' | 'freshTurn'>;

export class FreshServing {
  constructor(private readonly opts: FreshServingOptions) {}

  /** Hands fresh offers to the waiting workers without reading the disk. */
  serve(zone: string, state: FreshServingState): void {
    if (this.hand(zone, state)) {
      // rows given back to the disk wait there for a freed slot
      state.disk.blocked = true;
      state.disk.dirty = true;
    }
  }

  /**
   * Before a scan: offers that waited FRESH_MAX_WAIT_MS or more go to at most half of the waiting
   * workers (rounded up), the scan gets the others; every other such pass the disk goes first (one
   * worker asking at a time would otherwise always take the fresh mail).
   */
  serveWaited(zone: string, state: FreshServingState): void {
    const oldest = this.opts.lane.oldestAt(zone);
    const upTo = this.opts.clock.now() - FRESH_MAX_WAIT_MS;
    if (oldest === undefined || oldest > upTo || !state.waiters.length) return;
    state.freshTurn = !state.freshTurn;
    if (state.freshTurn) return; // it was the disk's turn
    // the scan that follows at once reads the rows given back: the disk need not be marked dirty
    if (this.hand(zone, state, { addedUpTo: upTo, maxJobs: Math.ceil(state.waiters.length / 2) })) state.disk.blocked = true;
  }

  /** One serve of the lane; true when rows went back to the disk for their domain's limits. */
  private hand(zone: string, state: FreshServingState, bounds: Pick<FreshServe<Waiter>, 'addedUpTo' | 'maxJobs'> = {}): boolean {
    const { lane, claim, grant } = this.opts;
    return lane.serve(zone, {
      maxRows: this.opts.maxRows(),
      waiters: state.waiters,
      claim: (domain) => claim(zone, domain, state.waiters),
      grant: (waiter, domain, meta, rows) => waiter.resolve(grant(zone, domain, meta, rows, waiter.owner)),
      ...bounds,
    });
  }
}
