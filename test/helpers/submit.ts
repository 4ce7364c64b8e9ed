/**
 * The fault plan's submitter ("Submitter"): N messages at concurrency C, one
 * connection per message, each carrying `X-Test-Id: <run>-<n>`. Every attempt's outcome is
 * recorded — 250 with its queue id, 4xx, 5xx, CLOSED (the server ended the connection without a
 * reply), ECONNREFUSED, another socket error, or TIMEOUT (our own deadline per attempt) — and
 * anything but 250 or 5xx is retried after a pause, as a real MUA or MSA would.
 *
 * It speaks SMTP over a raw socket so that no client library can swallow an outcome: a reply
 * that never came is an outcome here, not a hang.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';

export type Outcome = '250' | '4xx' | '5xx' | 'CLOSED' | 'ECONNREFUSED' | 'ESOCKET' | 'TIMEOUT';

export interface Attempt {
  /** message number, 0-based */
  n: number;
  testId: string;
  /** attempt number for this message, 1-based */
  attempt: number;
  outcome: Outcome;
  /** the SMTP command the outcome answered (or was waiting for) */
  stage: string;
  code?: number;
  text?: string;
  queueId?: string;
  /** socket error code for ESOCKET/ECONNREFUSED */
  errorCode?: string;
  startMs: number;
  endMs: number;
}

export interface Target {
  host: string;
  port: number;
  /** the client's own address (one of 127/8), to be one client among many */
  localAddress?: string;
}

export interface SubmitOptions {
  /** where to connect, asked again before every attempt (a restarted master has a new port) */
  target: () => Target;
  runId: string;
  count: number;
  concurrency: number;
  from?: string;
  recipients?: string[];
  /** approximate body size */
  bodyBytes?: number;
  /** random base64 lines instead of repeated text, so that LevelDB's compression cannot shrink them */
  randomBody?: boolean;
  /** our own deadline per attempt */
  timeoutMs?: number;
  retryDelayMs?: number;
  /** retries after the first attempt */
  maxRetries?: number;
  /** called after every attempt (tests use it to pick their moment) */
  onAttempt?: (a: Attempt) => void;
  /** stop starting new attempts once this returns true */
  shouldStop?: () => boolean;
}

export interface SubmitResult {
  attempts: Attempt[];
  /** test id → queue id, for every message that got 250 */
  acked: Map<string, string>;
  /** the last attempt of every message */
  final: Attempt[];
  elapsedMs: number;
}

export const testIdOf = (runId: string, n: number) => `${runId}-${n}`;

export function buildMessage(opts: { from: string; to: string[]; testId: string; bodyBytes: number; randomBody?: boolean }): string {
  const line = 'The quick brown fox jumps over the lazy dog; all work and no play. 0123456789\r\n';
  const lines = Math.max(1, Math.ceil(opts.bodyBytes / line.length));
  const body = opts.randomBody
    ? Array.from({ length: lines }, () => randomBytes(57).toString('base64') + '\r\n').join('')
    : line.repeat(lines);
  return (
    `From: <${opts.from}>\r\n` +
    `To: ${opts.to.map((t) => `<${t}>`).join(', ')}\r\n` +
    `Subject: fault test ${opts.testId}\r\n` +
    `X-Test-Id: ${opts.testId}\r\n` +
    '\r\n' +
    body
  );
}

export async function submit(opts: SubmitOptions): Promise<SubmitResult> {
  const from = opts.from ?? 'sender@src.test';
  const to = opts.recipients ?? ['r1@dest.test', 'r2@dest.test'];
  const maxRetries = opts.maxRetries ?? 50;
  const retryDelayMs = opts.retryDelayMs ?? 200;
  const attempts: Attempt[] = [];
  const final: Attempt[] = [];
  const acked = new Map<string, string>();
  const t0 = Date.now();
  let next = 0;

  const one = async (n: number) => {
    const testId = testIdOf(opts.runId, n);
    const data = buildMessage({ from, to, testId, bodyBytes: opts.bodyBytes ?? 1500, randomBody: opts.randomBody });
    for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
      const a = await sendOnce(opts.target(), { from, to, data, timeoutMs: opts.timeoutMs ?? 10_000 });
      const record: Attempt = { n, testId, attempt, ...a };
      attempts.push(record);
      opts.onAttempt?.(record);
      if (record.outcome === '250' && record.queueId) acked.set(testId, record.queueId);
      const done = record.outcome === '250' || record.outcome === '5xx' || attempt > maxRetries || opts.shouldStop?.();
      if (done) {
        final.push(record);
        return;
      }
      await new Promise((r) => setTimeout(r, retryDelayMs));
    }
  };

  const workers = Array.from({ length: Math.min(opts.concurrency, opts.count) }, async () => {
    while (next < opts.count && !opts.shouldStop?.()) await one(next++);
  });
  await Promise.all(workers);
  return { attempts, acked, final, elapsedMs: Date.now() - t0 };
}

interface Reply {
  code: number;
  text: string;
}

type Result = Omit<Attempt, 'n' | 'testId' | 'attempt'>;

/** One SMTP transaction on a new connection. Never rejects: every ending is an outcome. */
export function sendOnce(target: Target, msg: { from: string; to: string[]; data: string; timeoutMs: number }): Promise<Result> {
  const startMs = Date.now();
  return new Promise<Result>((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port, localAddress: target.localAddress });
    let buffer = '';
    let stage = 'CONNECT';
    let settled = false;
    let waiting: ((r: Reply) => void) | undefined;
    const queued: Reply[] = [];

    const finish = (r: Omit<Result, 'startMs' | 'endMs' | 'stage'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, stage, startMs, endMs: Date.now() });
      if (r.outcome === '250') socket.end('QUIT\r\n');
      socket.destroy();
    };
    const timer = setTimeout(() => finish({ outcome: 'TIMEOUT' }), msg.timeoutMs);

    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      buffer += d;
      let m: RegExpExecArray | null;
      // a reply ends with a line "ddd text" (space, not dash)
      while ((m = /^((?:\d{3}-[^\r\n]*\r?\n)*)(\d{3})(?: [^\r\n]*)?\r?\n/.exec(buffer))) {
        buffer = buffer.slice(m[0].length);
        const reply = { code: Number(m[2]), text: m[0].trimEnd() };
        if (waiting) {
          const w = waiting;
          waiting = undefined;
          w(reply);
        } else queued.push(reply);
      }
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      finish(err.code === 'ECONNREFUSED' ? { outcome: 'ECONNREFUSED', errorCode: err.code } : { outcome: 'ESOCKET', errorCode: err.code });
    });
    // 'end' and 'close' without the reply we wait for are outcomes too
    socket.on('end', () => finish({ outcome: 'CLOSED' }));
    socket.on('close', () => finish({ outcome: 'CLOSED' }));

    const reply = () =>
      new Promise<Reply>((r) => {
        const q = queued.shift();
        if (q) r(q);
        else waiting = r;
      });
    /** sends a line (or nothing for the greeting) and checks the reply; false ends the attempt */
    const step = async (name: string, line: string | undefined, expected: number): Promise<Reply | undefined> => {
      stage = name;
      if (line !== undefined) socket.write(line);
      const r = await reply();
      if (settled) return undefined;
      if (r.code !== expected) {
        finish({ outcome: r.code >= 500 ? '5xx' : r.code >= 400 ? '4xx' : 'ESOCKET', code: r.code, text: r.text });
        return undefined;
      }
      return r;
    };

    socket.once('connect', async () => {
      if (!(await step('GREETING', undefined, 220))) return;
      if (!(await step('EHLO', 'EHLO submit.test\r\n', 250))) return;
      if (!(await step('MAIL', `MAIL FROM:<${msg.from}>\r\n`, 250))) return;
      for (const rcpt of msg.to) if (!(await step('RCPT', `RCPT TO:<${rcpt}>\r\n`, 250))) return;
      if (!(await step('DATA', 'DATA\r\n', 354))) return;
      const body = msg.data.replace(/^\./gm, '..');
      const done = await step('DOT', body + (body.endsWith('\r\n') ? '' : '\r\n') + '.\r\n', 250);
      if (!done) return;
      // queue ids are hex; inbox ids (the inbound receiver) add base64url characters
      const queueId = /queued as ([0-9A-Za-z_-]+)/.exec(done.text)?.[1];
      finish({ outcome: '250', code: 250, text: done.text, queueId });
    });
  });
}

/** Outcome counts, for reports: { '250': 480, ECONNREFUSED: 31, … } */
export function countOutcomes(attempts: Attempt[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of attempts) {
    const key = a.code && a.outcome !== '250' ? `${a.outcome}:${a.code}` : a.outcome;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}
