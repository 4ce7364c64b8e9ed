/**
 * What the scheduler lends its two ways of serving a zone (lib/queue/fresh-serving.ts,
 * disk-serving.ts), built from real parts for their unit tests: a clock the test moves, a real
 * lease table and real jobs, waiters that record what they were handed, and domains the test
 * declares full (no connection may start).
 */
import { createLogger } from '../../lib/log/logger.js';
import type { Job } from '../../lib/channel/protocol.js';
import { jobOf } from '../../lib/queue/job.js';
import { LeaseTable } from '../../lib/queue/leases.js';
import { newZoneState, type ServingDeps, type Waiter, type ZoneState } from '../../lib/queue/zone-state.js';
import { ZoneTimer } from '../../lib/queue/zone-timer.js';
import { ManualClock } from './manual-clock.js';

export interface ServingKit {
  clock: ManualClock;
  leases: LeaseTable;
  deps: ServingDeps;
  state: ZoneState;
  /** the jobs handed out, in order, with the worker each went to */
  handed: { owner: string; job: Job }[];
  /** domains no new connection may start to */
  full: Set<string>;
  /** `owners` ask for work, in this order */
  ask(...owners: string[]): void;
}

export function servingKit(maxRows = 2, startMs?: number): ServingKit {
  const clock = new ManualClock(startMs);
  const leases = new LeaseTable({ leaseTimeoutMs: 3_600_000, clock, logger: createLogger('silent'), end: (id) => leases.remove(id) });
  const handed: ServingKit['handed'] = [];
  const full = new Set<string>();
  const state = newZoneState(new ZoneTimer(clock, () => undefined));
  const deps: ServingDeps = {
    clock,
    maxRows: () => maxRows,
    claim: (_zone, domain, free) => (full.has(domain) ? undefined : free.shift()),
    grant: (zone, domain, meta, rows, owner) => jobOf(leases.grant(owner, zone, domain, meta, rows)),
  };
  const ask = (...owners: string[]) => {
    for (const owner of owners) {
      const waiter: Waiter = { owner, resolve: (job) => handed.push({ owner, job }), reject: () => undefined };
      state.waiters.push(waiter);
    }
  };
  return { clock, leases, deps, state, handed, full, ask };
}
