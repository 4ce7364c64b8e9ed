/**
 * `sluice run` under strace, for the tests that read what reached the disk before a reply (F1b,
 * the LevelDB log switch): whether strace is installed, and one traced run from start to a clean
 * stop. The child is ours by PID; the app dir goes with it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startSluice, type SluiceChild } from './sluice-child.js';

export function hasStrace(): boolean {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts `sluice run -d appDir` under `strace -f -tt <flags> -o FILE`, runs `use` against it,
 * stops it (it must exit 0) and returns the trace. The app dir is removed in any case.
 */
export async function tracedRun(appDir: string, flags: string[], use: (m: SluiceChild) => Promise<void>): Promise<string> {
  const traceFile = path.join(appDir, 'strace.out');
  let m: SluiceChild | undefined;
  try {
    m = await startSluice(appDir, { wrap: ['strace', '-f', '-tt', ...flags, '-o', traceFile], readyTimeoutMs: 30_000 });
    await use(m);
    assert.deepEqual(await m.stop(), { code: 0, signal: null });
    return readFileSync(traceFile, 'utf8');
  } finally {
    if (m) {
      m.kill('SIGKILL');
      await m.exited;
    }
    rmSync(appDir, { recursive: true, force: true });
  }
}
