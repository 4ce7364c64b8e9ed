/**
 * The state of one zone's pump in the scheduler, as one explicit type: who waits, whether the
 * pump runs (and whether something changed meanwhile), what it knows of the zone's rows on disk,
 * and its one wake-up timer; and what the pump lends the two ways a zone is served (ServingDeps).
 */
import type { Job } from '../channel/protocol.js';
import type { Clock } from './clock.js';
import type { DeliveryRow, MessageMeta } from './types.js';
import type { ZoneTimer } from './zone-timer.js';

export interface Waiter {
  owner: string;
  resolve: (job: Job) => void;
  reject: (err: Error) => void;
}

/** Whether a zone's pump runs: `again` means something changed during the run (one more loop). */
export type PumpRun = 'idle' | 'running' | 'again';

/** What a zone's pump knows about the zone's rows on disk. */
export interface DiskState {
  /** the disk may hold due rows that are neither leased nor offered: scan before resting */
  dirty: boolean;
  /** the last scan left due rows behind because of domain limits: a freed slot means scan again */
  blocked: boolean;
  /** where the next scan goes on from, after one that stopped at its budget */
  cursor?: string;
  /** the due time up to which the last scan read: the timer looks for rows after it */
  scannedUpTo: number;
  /** a scan ran since the timer was last armed from the disk */
  armPending: boolean;
}

export interface ZoneState {
  waiters: Waiter[];
  run: PumpRun;
  disk: DiskState;
  /** fresh mail that waited long goes before the disk's older work on every other pass (fresh-serving.ts) */
  freshTurn: boolean;
  /** the zone's wake-up, at most one (the earliest wanted) */
  timer: ZoneTimer;
}

/** What the pump lends the two ways a zone is served (fresh-serving.ts, disk-serving.ts). */
export interface ServingDeps {
  clock: Clock;
  /** rows per job (read per use: a reload may change it) */
  maxRows(): number;
  /** a waiter for a new delivery to `domain`, taken from `free`, with its connection counted */
  claim(zone: string, domain: string, free: Waiter[]): Waiter | undefined;
  /** leases `rows` (one message, one domain) to `owner`; the connection is already counted */
  grant(zone: string, domain: string, meta: MessageMeta, rows: DeliveryRow[], owner: string): Job;
}

/** Whether a kick came while the pump was running (it loops once more). */
export const changedMeanwhile = (state: ZoneState): boolean => state.run === 'again';

/** A zone seen for the first time: its disk may hold due rows (a restart, a backlog). */
export function newZoneState(timer: ZoneTimer): ZoneState {
  return { waiters: [], run: 'idle', disk: { dirty: true, blocked: false, scannedUpTo: 0, armPending: false }, freshTurn: true, timer };
}
