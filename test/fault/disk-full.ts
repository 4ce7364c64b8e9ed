/**
 * Shared parts of the F7 disk-full tests (f7-*.test.ts): an app dir on a small tmpfs, the load
 * that fills it, probes that send one message at a time until the server says 250 again,
 * POST /send, filling a file system to ENOSPC, RSS.
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { makeAppDir, type ConfigOptions } from '../helpers/app-dir.js';
import { type SluiceChild } from '../helpers/sluice-child.js';
import { buildMessage, sendOnce, type Attempt } from '../helpers/submit.js';
import { mountTmpfs, type Tmpfs } from '../helpers/tmpfs.js';

/** The load that fills the disk: 20 KB of random bytes each (LevelDB compresses repeated text,
 * which would never fill it), ten at a time, no retries. */
export const FILL = { count: 2000, concurrency: 10, bodyBytes: 20_000, randomBody: true, maxRetries: 0 } as const;

/** An app dir whose data/ is a tmpfs of `sizeMb` MB; undefined, the test skipped with the reason,
 * where this machine cannot mount one. */
export function appDirOnTmpfs(t: TestContext, opts: ConfigOptions, prefix: string, sizeMb: number): { appDir: string; disk: Tmpfs } | undefined {
  const appDir = makeAppDir(opts, prefix);
  const disk = mountTmpfs(path.join(appDir, 'data'), sizeMb);
  if (typeof disk !== 'string') return { appDir, disk };
  rmSync(appDir, { recursive: true, force: true });
  t.skip(disk);
  return undefined;
}

/** Kills the child master if one was started, unmounts the tmpfs and removes the app dir. */
export async function tearDown(m: SluiceChild | undefined, disk: Tmpfs, appDir: string): Promise<void> {
  if (m) {
    m.kill('SIGKILL');
    await m.exited;
  }
  disk.unmount();
  rmSync(appDir, { recursive: true, force: true });
}

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
