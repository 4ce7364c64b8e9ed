/**
 * The live part of the inbound benchmark (issue 11), run against the same sluice child after the
 * acceptance load:
 *
 * - Latency: MESSAGES_LIVE messages, one at a time, to one inbox with one SSE client on it; before
 *   each, a waiter (GET …/wait?after=<the previous id>). For each message, the time from the 250
 *   (nodemailer's sendMail resolving) to the SSE event carrying its id, and to the waiter's reply
 *   fully read. Issue 11 asks for an event within 1 s and a waiter released within 100 ms.
 * - Idle cost: IDLE_CLIENTS waiters (long timeout) and IDLE_CLIENTS SSE clients, each on an inbox
 *   of its own that gets no mail; the sluice process's RSS before and with them connected, and
 *   its CPU time over IDLE_MS while they are all idle (it should be about none).
 *
 * The clients are the bench's own fetch calls on 127.0.0.1; every request has a deadline, every
 * stream is aborted at the end.
 */
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { procStats, rssBytes } from './tools.js';

export const MESSAGES_LIVE = 1000;
export const IDLE_CLIENTS = 1000;
export const IDLE_MS = 5000;
const LIVE_INBOX = 'live@sluice.test';
const REQUEST_TIMEOUT_MS = 15_000;
/** an idle waiter must outlast the measurement */
const IDLE_WAIT = '120s';

export interface LiveFigures {
  sseMs: number[];
  waitMs: number[];
  rssBeforeIdleBytes: number;
  rssIdleBytes: number;
  idleCpuMs: number;
  idleConnected: { sse: number; waiters: number };
}

/** One SSE client: resolves `opened` on the first bytes; `nextId()` waits for an event's id. */
class SseClient {
  readonly abort = new AbortController();
  private buffer = '';
  private readonly seen = new Map<string, number>();
  private readonly wanted = new Map<string, (atMs: number) => void>();
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.opened = (async () => {
      const res = await fetch(url, { signal: this.abort.signal, headers: { accept: 'text/event-stream' } });
      if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      this.take(first.value ?? '');
      void (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          this.take(value);
        }
      })().catch(() => undefined);
    })();
  }

  private take(text: string): void {
    const now = performance.now();
    this.buffer += text;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const event = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const id = /^id: (.+)$/m.exec(event)?.[1];
      if (!id) continue;
      const resolve = this.wanted.get(id);
      if (resolve) {
        this.wanted.delete(id);
        resolve(now);
      } else this.seen.set(id, now);
    }
  }

  /** When the event with this id arrived (now or later), bounded by REQUEST_TIMEOUT_MS. */
  arrival(id: string): Promise<number> {
    const at = this.seen.get(id);
    if (at !== undefined) {
      this.seen.delete(id);
      return Promise.resolve(at);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no SSE event for ${id} within ${REQUEST_TIMEOUT_MS} ms`)), REQUEST_TIMEOUT_MS);
      this.wanted.set(id, (atMs) => {
        clearTimeout(timer);
        resolve(atMs);
      });
    });
  }
}

export async function runLive(api: string, smtpPort: number, pid: number): Promise<LiveFigures> {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 1, maxMessages: Infinity });
  const sse = new SseClient(`${api}/api/inboxes/${LIVE_INBOX}/events`);
  const sseMs: number[] = [];
  const waitMs: number[] = [];
  try {
    await sse.opened;
    let after: string | undefined;
    const body = 'A line of a message to time its way to the live routes.\n'.repeat(40);
    for (let i = 0; i < MESSAGES_LIVE; i++) {
      const waitUrl = `${api}/api/inboxes/${LIVE_INBOX}/wait?timeout=10s${after ? `&after=${after}` : ''}`;
      const waiter = fetch(waitUrl, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }).then(async (res) => {
        const json = (await res.json()) as { id?: string };
        return { status: res.status, id: json.id, atMs: performance.now() };
      });
      const info = await transport.sendMail({ envelope: { from: 's@src.test', to: [LIVE_INBOX] }, raw: `From: s@src.test\r\nTo: ${LIVE_INBOX}\r\nSubject: live ${i}\r\n\r\n${body}` });
      const t250 = performance.now();
      const id = /queued as (\S+)/.exec(info.response)?.[1];
      if (!id) throw new Error(`no id in the reply ${info.response}`);
      const [sseAt, waited] = await Promise.all([sse.arrival(id), waiter]);
      if (waited.status !== 200 || waited.id !== id) throw new Error(`the waiter got ${waited.status} ${waited.id ?? ''}, not message ${id}`);
      sseMs.push(sseAt - t250);
      waitMs.push(waited.atMs - t250);
      after = id;
    }
  } finally {
    sse.abort.abort();
    transport.close();
  }

  // idle clients: waiters and streams on inboxes that get no mail
  const rssBeforeIdleBytes = rssBytes(pid);
  const connectionsBefore = establishedTo(new URL(api).port);
  const aborts = new AbortController();
  // one listener per idle client, on purpose
  setMaxListeners(2 * IDLE_CLIENTS + 10, aborts.signal);
  const idleSse: SseClient[] = [];
  const waiters: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < IDLE_CLIENTS; i++) {
      const s = new SseClient(`${api}/api/inboxes/idle-sse-${i}@sluice.test/events`);
      aborts.signal.addEventListener('abort', () => s.abort.abort());
      idleSse.push(s);
      // a signal of its own (fetch adds listeners of its own to the signal it is given)
      const waiter = new AbortController();
      aborts.signal.addEventListener('abort', () => waiter.abort());
      waiters.push(fetch(`${api}/api/inboxes/idle-wait-${i}@sluice.test/wait?timeout=${IDLE_WAIT}`, { signal: waiter.signal }).catch(() => undefined));
    }
    const opened = await Promise.allSettled(idleSse.map((s) => s.opened));
    const sseUp = opened.filter((r) => r.status === 'fulfilled').length;
    // a waiter answers nothing while it waits: give the server a moment to have them all, then
    // count them by the connections it holds
    await new Promise((r) => setTimeout(r, 1000));
    const waitersUp = establishedTo(new URL(api).port) - connectionsBefore - sseUp;
    const rssIdleBytes = rssBytes(pid);
    const cpuBefore = procStats(pid).cpuMs;
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleCpuMs = procStats(pid).cpuMs - cpuBefore;
    return { sseMs, waitMs, rssBeforeIdleBytes, rssIdleBytes, idleCpuMs, idleConnected: { sse: sseUp, waiters: waitersUp } };
  } finally {
    aborts.abort();
    await Promise.allSettled(waiters);
  }
}

/** TCP connections established to `port` on 127.0.0.1 (the server's side of them), from /proc. */
function establishedTo(port: string): number {
  const hexPort = Number(port).toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // local address 127.0.0.1:port, state 01 (ESTABLISHED)
    if (f[1] === `0100007F:${hexPort}` && f[3] === '01') n++;
  }
  return n;
}
