/**
 * The shape of the queue, like Postfix's qshape: per zone and recipient domain, how many rows
 * wait, by how long they have been queued. Read from the index keys alone (s: for pending rows,
 * h: for held ones: zone, id and domain are in the key and its value, and the id holds the time
 * the message was queued), so a queue of a million rows is summed without decoding one row.
 */
import { queueIdTime } from './ids.js';
import type { QueueReader } from './reader.js';
import { turn } from './select.js';

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

function bucketOf(ageMs: number): number {
  const min = ageMs / 60_000;
  for (let i = 0; i < AGE_BUCKETS_MIN.length; i++) if (min < AGE_BUCKETS_MIN[i]!) return i;
  return AGE_BUCKETS_MIN.length;
}

function addTo(line: ShapeLine, bucket: number, held: boolean): void {
  line.total++;
  if (held) line.held++;
  line.ages[bucket]!++;
}

function addLine(to: ShapeLine, from: ShapeLine): void {
  to.total += from.total;
  to.held += from.held;
  from.ages.forEach((n, i) => (to.ages[i]! += n));
}

export async function queueShape(reader: QueueReader, opts: ShapeOptions): Promise<QueueShape> {
  const status = opts.status ?? 'all';
  const zones = new Map<string, Map<string, ShapeLine>>();
  for await (const batch of reader.indexBatches({ held: status !== 'pending', pending: status !== 'held', zone: opts.zone })) {
    for (const r of batch) {
      let domains = zones.get(r.zone);
      if (!domains) zones.set(r.zone, (domains = new Map()));
      let line = domains.get(r.domain);
      if (!line) domains.set(r.domain, (line = emptyLine()));
      addTo(line, bucketOf(opts.nowMs - queueIdTime(r.id)), r.held);
    }
    await turn();
  }
  const total = emptyLine();
  const out: ZoneShape[] = [];
  for (const [zone, domains] of [...zones].sort(([a], [b]) => a.localeCompare(b))) {
    const sorted = [...domains].map(([domain, line]) => ({ domain, ...line })).sort((a, b) => b.total - a.total || a.domain.localeCompare(b.domain));
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
