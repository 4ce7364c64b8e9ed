/**
 * Pieces the fault tests of the inbound receiver share (F9, F11, F12, F14, F19, F20): an
 * in-process master whose receiver takes mail for inbox.test, one real SMTP delivery to it from a
 * chosen loopback address, an HTTP request sent byte for byte from a chosen address, and small
 * measures (percentiles, open file descriptors, /metrics series).
 *
 * Every client here comes from an address of 127/8 other than 127.0.0.1, which the receiver's
 * throttle exempts by default (the local Sluice delivering to itself): these clients are
 * strangers, counted and capped like any sender on port 25.
 */
import { readdirSync } from 'node:fs';
import http from 'node:http';
import { startMaster, type TestMaster } from '../helpers/master.js';
import { buildMessage, sendOnce, type Attempt } from '../helpers/submit.js';

export const INBOX_DOMAIN = 'inbox.test';

export interface InboundMaster extends TestMaster {
  /** the receiver's SMTP port */
  inboundPort: number;
}

/** A master with the receiver on (inbox.test), no delivery workers, `overrides` laid on top. */
export async function startInbound(overrides: Record<string, unknown> = {}): Promise<InboundMaster> {
  const inbound = { domains: [INBOX_DOMAIN], ...((overrides.inbound as Record<string, unknown> | undefined) ?? {}) };
  const m = await startMaster({ ...overrides, inbound });
  return { ...m, inboundPort: m.port('inbound') };
}

export type Delivery = Omit<Attempt, 'n' | 'testId' | 'attempt'> & { ms: number };

/** One message to the receiver on a new connection from `localAddress`; every ending is an outcome. */
export async function deliver(
  port: number,
  opts: { localAddress: string; to: string | string[]; from?: string; testId?: string; bodyBytes?: number; timeoutMs?: number },
): Promise<Delivery> {
  const to = Array.isArray(opts.to) ? opts.to : [opts.to];
  const from = opts.from ?? 'sender@src.test';
  const data = buildMessage({ from, to, testId: opts.testId ?? 'probe', bodyBytes: opts.bodyBytes ?? 500 });
  const r = await sendOnce({ host: '127.0.0.1', port, localAddress: opts.localAddress }, { from, to, data, timeoutMs: opts.timeoutMs ?? 10_000 });
  return { ...r, ms: r.endMs - r.startMs };
}

/** The p-th percentile (0-100) of `values`, nearest rank; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const mb = (bytes: number) => bytes / 2 ** 20;

/** File descriptors this process has open now. */
export function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

/** `count` distinct client addresses 127.<second>.x.y (y from 1 to 250), in order. */
export function loopbackAddresses(second: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `127.${second}.${Math.floor(i / 250)}.${(i % 250) + 1}`);
}

/** The series of a Prometheus text scrape: one entry per sample line, `name{labels}`. */
export async function scrapeSeries(api: string): Promise<Set<string>> {
  const res = await fetch(`${api}/metrics`, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  const text = await res.text();
  const series = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    series.add(line.slice(0, line.lastIndexOf(' ')));
  }
  return series;
}

/** Node's own runtime series (GC kinds appear as collections of a new kind happen). */
export const isRuntimeSeries = (s: string) => /^sluice_(process|nodejs)_/.test(s);

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  ms: number;
}

/**
 * One HTTP request with the path sent exactly as given (fetch would resolve "../" and re-encode
 * it first) and from a chosen loopback address (the API's rate limit is per client address).
 */
export function rawHttp(base: string, path: string, opts: { method?: string; localAddress?: string } = {}): Promise<RawResponse> {
  const url = new URL(base);
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', localAddress: opts.localAddress, agent: false, timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), ms: performance.now() - t0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} in 10 s`)));
    req.on('error', reject);
    req.end();
  });
}
