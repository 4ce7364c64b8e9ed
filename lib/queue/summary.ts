/**
 * The shape of the queue, like Postfix's qshape: per zone and recipient domain, how many rows
 * wait, by how long they have been queued. Read from the index keys alone (s: for pending rows,
 * h: for held ones: zone, id and domain are in the key and its value, and the id holds the time
 * the message was queued), so a queue of a million rows is summed without decoding one row.
 */
import type { QueueReader } from './reader.js';

/** qshape's buckets: rows younger than each bound (minutes); the last column is everything older. */
export const AGE_BUCKETS_MIN = [5, 10, 20, 40, 80, 160, 320, 640, 1280] as const;

export interface ShapeLine {
  /** every row of the line */
  total: number;
  held: number;
  /** AGE_BUCKETS_MIN.length + 1 counts: younger than 5 min, 5-10, …, 640-1280, older */
  ages: number[];
}

export interface DomainShape extends ShapeLine {
  domain: string;
}

export interface ZoneShape extends ShapeLine {
  zone: string;
  domains: DomainShape[];
  /** domains past `top`, summed in one line (undefined when none were left out) */
  others?: ShapeLine & { domains: number };
}

export interface QueueShape {
  time: number;
  buckets: readonly number[];
  zones: ZoneShape[];
  total: ShapeLine;
}

export interface ShapeOptions {
  nowMs: number;
  zone?: string;
  /** 'pending' (queued and deferred), 'held', or both (default) */
  status?: 'pending' | 'held' | 'all';
  /** the largest domains shown per zone (the rest summed) */
  top: number;
}

const emptyLine = (): ShapeLine => ({ total: 0, held: 0, ages: new Array<number>(AGE_BUCKETS_MIN.length + 1).fill(0) });

/** qshape's bucket bounds as queue times: a row queued after bounds[i] is younger than AGE_BUCKETS_MIN[i] minutes. */
function bucketBounds(nowMs: number): number[] {
  return AGE_BUCKETS_MIN.map((min) => nowMs - min * 60_000);
}

function bucketOf(queuedMs: number, bounds: number[]): number {
  for (let i = 0; i < bounds.length; i++) if (queuedMs > bounds[i]!) return i;
  return bounds.length;
}

function addLine(to: ShapeLine, from: ShapeLine): void {
  to.total += from.total;
  to.held += from.held;
  from.ages.forEach((n, i) => (to.ages[i]! += n));
}

/** A domain's counts while the index is walked: the age buckets, then the held rows (one array per
 * domain, no object per row: a million rows are summed in well under a second). */
type Tally = Float64Array;
const HELD = AGE_BUCKETS_MIN.length + 1;

function lineOf(tally: Tally): ShapeLine {
  const ages = Array.from(tally.subarray(0, HELD));
  return { total: ages.reduce((a, b) => a + b, 0), held: tally[HELD]!, ages };
}

export async function queueShape(reader: QueueReader, opts: ShapeOptions): Promise<QueueShape> {
  const status = opts.status ?? 'all';
  const zones = new Map<string, Map<string, Tally>>();
  const bounds = bucketBounds(opts.nowMs);
  // the previous entry's zone and its domains: consecutive entries mostly share the zone
  let lastZone: string | undefined;
  let domains = new Map<string, Tally>();
  let lastQueuedMs = NaN;
  let bucket = 0;
  await reader.scanIndex({ held: status !== 'pending', pending: status !== 'held', zone: opts.zone }, (zone, domain, queuedMs, held) => {
    if (zone !== lastZone) {
      lastZone = zone;
      const known = zones.get(zone);
      if (known) domains = known;
      else zones.set(zone, (domains = new Map()));
    }
    let tally = domains.get(domain);
    if (!tally) domains.set(domain, (tally = new Float64Array(HELD + 1)));
    if (queuedMs !== lastQueuedMs) bucket = bucketOf((lastQueuedMs = queuedMs), bounds);
    tally[bucket]!++;
    if (held) tally[HELD]!++;
  });
  const total = emptyLine();
  const out: ZoneShape[] = [];
  for (const [zone, domains] of [...zones].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...domains].map(([domain, tally]) => ({ domain, ...lineOf(tally) })).sort((a, b) => b.total - a.total || a.domain.localeCompare(b.domain));
    const z: ZoneShape = { zone, ...emptyLine(), domains: sorted.slice(0, opts.top) };
    for (const d of sorted) addLine(z, d);
    if (sorted.length > opts.top) {
      const others = { ...emptyLine(), domains: sorted.length - opts.top };
      for (const d of sorted.slice(opts.top)) addLine(others, d);
      z.others = others;
    }
    addLine(total, z);
    out.push(z);
  }
  return { time: opts.nowMs, buckets: AGE_BUCKETS_MIN, zones: out, total };
}
