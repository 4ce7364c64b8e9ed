/**
 * The thread password-checker.ts runs scrypt on: one check at a time, blocking this thread only.
 * On Linux the thread lowers its own CPU priority to the lowest (nice 19), so that on a busy
 * machine the event loop and LevelDB's threads come first and logins wait.
 *
 *   in:  { id, password, stored }      out: { id, ok } | { id, error }
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { verifyPasswordSync } from './passwords.js';

try {
  // "/proc/<pid>/task/<tid>": setpriority(2) takes a thread id on Linux
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (Number.isInteger(tid) && tid > 0) setPriority(tid, 19);
} catch {
  // not Linux, or not allowed: the checks run at the process's priority
}

export interface CheckJob {
  id: number;
  password: string;
  stored: string;
}
export type CheckAnswer = { id: number; ok: boolean } | { id: number; error: string };

parentPort?.on('message', (job: CheckJob) => {
  let answer: CheckAnswer;
  try {
    answer = { id: job.id, ok: verifyPasswordSync(job.password, job.stored) };
  } catch (err) {
    answer = { id: job.id, error: (err as Error).message };
  }
  parentPort!.postMessage(answer);
});
