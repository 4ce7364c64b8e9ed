/**
 * Shared pieces of the delivery and fault tests: an in-process Master whose log lines are kept
 * (so a test can read DEFERRED/BOUNCED/DROPPED events and their fields), submission of tagged
 * messages over real SMTP, bounded waiting, and small queue probes through the HTTP API.
 *
 * Workers stay silent (config log level "silent"); only the master's logger is captured.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import nodemailer from 'nodemailer';
import { startMaster, tempDir, type TestMaster } from './master.js';

export interface LogLine {
  event?: string;
  msg?: string;
  level: number;
  time: string;
  [key: string]: unknown;
}

export interface LoggedMaster extends TestMaster {
  logs: LogLine[];
  /** log lines with this event code */
  events(event: string): LogLine[];
}

/** Compressed time for fault tests (conventions). */
export const FAST = {
  queue: { retrySchedule: ['1s', '2s', '4s', '8s'], maxQueueTime: '20s' },
  delivery: { connectTimeout: '2s', greetingTimeout: '2s', socketTimeout: '5s', unreachableHold: '0s' },
} as const;

export async function startLoggedMaster(overrides: Record<string, unknown> = {}, dir = tempDir()): Promise<LoggedMaster> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          logs.push(JSON.parse(line) as LogLine);
        } catch {
          // not JSON: ignore
        }
      }
      cb();
    },
  });
  const logger = pino({ level: 'info', base: { role: 'master' }, timestamp: pino.stdTimeFunctions.isoTime }, sink);
  const m = await startMaster(overrides, dir, logger);
  return { ...m, logs, events: (event) => logs.filter((l) => l.event === event) };
}

export { waitFor } from './wait.js';

export interface TaggedMail {
  from?: string;
  to: string | string[];
  testId: string;
  subject?: string;
  text?: string;
  headers?: Record<string, string>;
  /** envelope sender override ('' = the null sender) */
  envelopeFrom?: string;
}

/** A pooled SMTP submission client for one master. */
export function submitter(smtpPort: number, maxConnections = 5) {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port: smtpPort, ignoreTLS: true, pool: true, maxConnections, maxMessages: 1000 });
  return {
    /** Sends one message; resolves with its queue id once the master said 250. */
    async send(mail: TaggedMail): Promise<string> {
      const to = Array.isArray(mail.to) ? mail.to : [mail.to];
      const from = mail.from ?? 'sender@src.test';
      const info = await transport.sendMail({
        from,
        to,
        subject: mail.subject ?? `test ${mail.testId}`,
        text: mail.text ?? `message ${mail.testId}\r\n`,
        headers: { 'X-Test-Id': mail.testId, ...mail.headers },
        envelope: { from: mail.envelopeFrom ?? from, to },
      });
      const m = /queued as (\w+)/.exec(info.response);
      if (!m) throw new Error(`no queue id in ${info.response}`);
      return m[1]!;
    },
    close: () => transport.close(),
  };
}

export interface QueueView {
  queued: number;
  deferred: number;
  processed: number;
}

export async function queueOf(api: string, zone = 'default'): Promise<QueueView> {
  const res = await fetch(`${api}/queue/${zone}`);
  return (await res.json()) as QueueView;
}

export interface MessageView {
  meta: Record<string, unknown>;
  messages: {
    id: string;
    seq: string;
    recipient: string;
    status: string;
    queued: string;
    deferred?: {
      first: number | null;
      count: number;
      last: number | null;
      next: number;
      response: string | null;
      category: string | null;
      mx: string | null;
      tls: boolean | null;
      tlsPolicy: string | null;
    };
  }[];
}

/** GET /message/:id, or undefined once the message has left the queue. */
export async function messageOf(api: string, id: string): Promise<MessageView | undefined> {
  const res = await fetch(`${api}/message/${id}`);
  if (res.status === 404) return undefined;
  return (await res.json()) as MessageView;
}

/** The highest number of intervals open at the same time. */
export function maxOverlap(intervals: { start: number; end: number }[]): number {
  const points = intervals.flatMap((i) => [
    { t: i.start, d: 1 },
    { t: i.end, d: -1 },
  ]);
  // an end at the same ms as a start closes first
  points.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const p of points) {
    now += p.d;
    max = Math.max(max, now);
  }
  return max;
}

/** A port on loopback where nothing listens (connections are refused). */
export async function closedPort(): Promise<number> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
