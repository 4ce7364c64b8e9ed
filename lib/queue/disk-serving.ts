/**
 * When a zone's pump (scheduler.ts) serves rows from disk: one pass over the due part of the
 * zone's index (due-scan.ts) for the workers waiting, what the pass learnt recorded in the zone's
 * disk state (still dirty, blocked by a domain limit, where to go on), and each group it found
 * read back as a job and handed to its worker.
 *
 * Invariants: no taken row (leased or pinned, leases.ts) is handed out, even one taken while the
 * job was being read; a connection counted for a group that falls through is given back.
 */
import type { Job } from '../channel/protocol.js';
import { scanDueRows, type DueGroup } from './due-scan.js';
import type { QueueStore } from './store.js';
import type { ServingDeps, Waiter, ZoneState } from './zone-state.js';

/** How many index keys one pass may read before it gives up for now. */
export const SCAN_BUDGET = 5000;

export interface DiskServingOptions extends ServingDeps {
  store: Pick<QueueStore, 'scanDue' | 'readJob'>;
  /** leased or pinned: never handed out */
  isTaken(id: string, seq: number): boolean;
  /** waits in the fresh lane: it goes out from memory, in the same order, so a scan skips it */
  isOffered(id: string, seq: number): boolean;
  /** a counted connection that was never made */
  unclaim(zone: string, domain: string): void;
}

/** The part of a zone's state the disk path reads and marks. */
export type DiskServingState = Pick<ZoneState, 'waiters' | 'disk'>;

export class DiskServing {
  constructor(private readonly opts: DiskServingOptions) {}

  /** One pass, its jobs handed to their waiters. Returns true when it stopped at its budget. */
  async serve(zone: string, state: DiskServingState): Promise<boolean> {
    const { store, clock, isTaken, isOffered, claim, unclaim } = this.opts;
    const now = clock.now();
    const after = state.disk.cursor;
    state.disk.cursor = undefined;
    // cleared before reading: anything that dirties the disk during the scan is seen next pass
    state.disk.dirty = false;
    state.disk.scannedUpTo = now;
    const scan = await scanDueRows(store.scanDue(zone, now, after), {
      budget: SCAN_BUDGET,
      maxRows: this.opts.maxRows(),
      free: [...state.waiters],
      isTaken: (id, seq) => isTaken(id, seq) || isOffered(id, seq),
      claim: (domain, free) => claim(zone, domain, free),
    });
    if (scan.unread) state.disk.cursor = scan.cursor;
    if (scan.unread || scan.stoppedEarly) state.disk.dirty = true;
    state.disk.blocked = scan.blocked;

    for (const g of scan.groups) {
      const i = state.waiters.indexOf(g.waiter);
      if (i < 0) {
        // its worker left during the scan: the rows stay due, the connection was never made
        unclaim(zone, g.domain);
        state.disk.dirty = true;
        continue;
      }
      state.waiters.splice(i, 1);
      const job = await this.readJob(zone, g);
      if (job) g.waiter.resolve(job);
      else state.waiters.unshift(g.waiter);
    }
    return scan.unread;
  }

  /** Reads a group's metadata and rows and leases them; undefined if they are gone. */
  private async readJob(zone: string, g: DueGroup<Waiter>): Promise<Job | undefined> {
    // rows an outcome moved since the scan's snapshot are left out by the store (their own due
    // time is the truth: trying one now would be an early retry)
    const found = await this.opts.store.readJob(zone, g.id, g.keys);
    const meta = found.meta;
    // leased while this read was waiting (a fresh offer of the same row): never twice
    const rows = found.rows.filter((row) => !this.opts.isTaken(row.id, row.seq));
    if (!meta || !rows.length) {
      this.opts.unclaim(zone, g.domain);
      return undefined;
    }
    return this.opts.grant(zone, g.domain, meta, rows, g.waiter.owner);
  }
}
