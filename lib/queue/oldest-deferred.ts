/**
 * The oldest deferred row of each zone, for the metrics: rows are keyed by message id and ids
 * sort by creation time (ids.ts), so a scan of the row index from its start meets each zone's
 * oldest deferred row before any younger one and can stop as soon as every zone that has deferred
 * rows (the counters say which) has been seen.
 *
 * Bounds: at most `budgetRows` rows per scan, and one scan per `maxAgeMs` whatever the number of
 * scrapes (the last answer is kept), unless a zone has deferred rows now that it had none of at
 * the last scan. A zone not met within the budget is left out: its oldest deferred row is younger
 * than every row read, so leaving it out hides nothing older.
 */
import type { QueueStore } from './store.js';

export class OldestDeferred {
  private last: { at: number; value: Record<string, number>; searched: Set<string> } | undefined;
  private running: Promise<Record<string, number>> | undefined;

  constructor(
    private readonly store: QueueStore,
    private readonly zones: () => readonly string[],
    private readonly opts = { budgetRows: 50_000, maxAgeMs: 10_000 },
    private readonly now: () => number = Date.now,
  ) {}

  /** Zone → creation time (ms) of its oldest deferred row. */
  get(): Promise<Record<string, number>> {
    const wanted = this.withDeferred();
    const last = this.last;
    if (last && this.now() - last.at < this.opts.maxAgeMs && [...wanted].every((z) => last.searched.has(z))) {
      // a zone whose deferred rows are all gone since has no oldest one
      return Promise.resolve(Object.fromEntries(Object.entries(last.value).filter(([z]) => wanted.has(z))));
    }
    this.running ??= this.scan(new Set(wanted)).then(
      (value) => {
        this.last = { at: this.now(), value, searched: wanted };
        this.running = undefined;
        return value;
      },
      () => {
        this.running = undefined;
        return this.last?.value ?? {};
      },
    );
    return this.running;
  }

  private withDeferred(): Set<string> {
    return new Set(this.zones().filter((z) => this.store.counters.zoneTotals(z).deferred > 0));
  }

  private async scan(wanted: Set<string>): Promise<Record<string, number>> {
    const found: Record<string, number> = {};
    if (!wanted.size || !this.store.isOpen) return found;
    let read = 0;
    for await (const row of this.store.rowsOldestFirst()) {
      if (row.status === 'deferred' && wanted.has(row.zone)) {
        found[row.zone] = row.created;
        wanted.delete(row.zone);
        if (!wanted.size) break;
      }
      if (++read >= this.opts.budgetRows) break;
    }
    return found;
  }
}
