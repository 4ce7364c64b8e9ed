/**
 * When the parser may work in the background: not while the SMTP intake is receiving mail. A
 * parse costs the receiver's one thread about as much as the receipt itself (mailparser, links,
 * codes, the spam score, mailauth), so during a burst it halves the rate at which mail is taken
 * in; the 250 never waits for a parse, so the parse can wait for the burst to pass.
 *
 * The wait is bounded (PacingLimits): past a number of messages or an age, background parses run
 * whatever the intake does, so under a flood that does not end the parser still keeps pace, at
 * the cost of intake rate, and what waits stays bounded. Parses someone waits for (a read, a
 * waiter, a live subscriber: ParseQueue.ensure) never wait for the intake.
 */

/** How long after the last receipt ended the intake still counts as busy. */
export const QUIET_MS = 100;

export interface PacingLimits {
  /** background parses wait at most while this many messages are waiting */
  maxDeferred: number;
  /** and at most this long after the message was stored */
  maxDeferMs: number;
}

export const DEFAULT_PACING: PacingLimits = { maxDeferred: 10_000, maxDeferMs: 30_000 };

/** Counts the receipts in flight; busy while any is, and QUIET_MS after the last one ended. */
export class IntakeActivity {
  private inFlight = 0;
  private lastEndMs = 0;

  /** A receipt starts; call the function returned when it ends, whatever its outcome. */
  begin(): () => void {
    this.inFlight++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.inFlight--;
      this.lastEndMs = Date.now();
    };
  }

  busy(nowMs = Date.now()): boolean {
    return this.inFlight > 0 || nowMs - this.lastEndMs < QUIET_MS;
  }
}
