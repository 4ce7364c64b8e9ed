/**
 * Checks SMTP passwords (scrypt) away from everything else the master does. node:crypto's async
 * scrypt runs on libuv's thread pool, the four threads LevelDB reads and commits on: a flood of
 * failed logins (each ~50 ms of hashing) would queue every commit, and so every 250, behind it.
 * Here checks run one at a time on a worker thread of their own (password-worker.ts), and at
 * most MAX_WAITING wait; past that a login gets a temporary refusal (454) at once instead of a
 * place in a queue without end.
 */
import { SmtpError } from '../errors/smtp-error.js';
import type { CheckAnswer, CheckJob } from './password-worker.js';
import { WorkerThread } from './worker-thread.js';

/** checks waiting for the thread at most: a few seconds of hashing */
const MAX_WAITING = 64;

export class PasswordChecker {
  private readonly thread = new WorkerThread<CheckAnswer>(new URL('./password-worker.js', import.meta.url), () => SmtpError.authBusy());

  /** Whether `password` matches `stored`; an SmtpError (454) when too many checks wait already. */
  async verify(password: string, stored: string): Promise<boolean> {
    if (this.thread.waitingCount >= MAX_WAITING) throw SmtpError.authBusy();
    const session = this.thread.session();
    const job: CheckJob = { id: session.id, password, stored };
    const answer = await session.answer(job);
    if ('error' in answer) throw new Error(`password check failed: ${answer.error}`);
    return answer.ok;
  }

  close(): Promise<void> {
    return this.thread.close();
  }
}
