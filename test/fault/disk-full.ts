/**
 * Shared parts of the F7 disk-full tests (f7-*.test.ts): probes that send one message at a time
 * until the server says 250 again, POST /send, filling a file system to ENOSPC, RSS.
 */
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { buildMessage, sendOnce, type Attempt } from '../helpers/submit.js';

export const RCPTS = ['r1@dest.test', 'r2@dest.test'];
export const MB = 1024 * 1024;

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Writes `file` until the file system says ENOSPC (LevelDB may still be writing meanwhile). */
export function fillUp(file: string): void {
  const fd = openSync(file, 'w');
  const block = Buffer.alloc(64 * 1024, 0x61);
  try {
    for (let i = 0; i < 100_000; i++) writeSync(fd, block);
    throw new Error('the disk never filled up');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
}

export async function postSend(apiPort: number, testId: string): Promise<{ status: number; body: { id?: string; error?: string; message?: string } }> {
  const res = await fetch(`http://127.0.0.1:${apiPort}/send`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ from: 'api@src.test', to: RCPTS, subject: testId, text: 'api body', headers: { 'X-Test-Id': testId } }),
  });
  return { status: res.status, body: (await res.json()) as { id?: string; error?: string } };
}

/** Sends one message at a time until one gets 250; the time it took, or -1 after `limitMs`. */
export async function waitFor250(port: number, testId: string, limitMs: number): Promise<{ ms: number; queueId?: string; last?: Attempt['outcome'] }> {
  const t0 = Date.now();
  let last: Attempt['outcome'] | undefined;
  for (let i = 0; i < 200 && Date.now() - t0 < limitMs; i++) {
    const data = buildMessage({ from: 'probe@src.test', to: RCPTS, testId, bodyBytes: 2000 });
    const r = await sendOnce({ host: '127.0.0.1', port }, { from: 'probe@src.test', to: RCPTS, data, timeoutMs: 10_000 });
    last = r.outcome;
    if (r.outcome === '250') return { ms: Date.now() - t0, queueId: r.queueId, last };
    await new Promise((res) => setTimeout(res, 200));
  }
  return { ms: -1, last };
}
