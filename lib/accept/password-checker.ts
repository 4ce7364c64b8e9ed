/**
 * Checks SMTP passwords (scrypt) away from everything else the master does. node:crypto's async
 * scrypt runs on libuv's thread pool, the four threads LevelDB reads and commits on: a flood of
 * failed logins (each ~50 ms of hashing) would queue every commit, and so every 250, behind it.
 * Here checks run one at a time on a worker thread of their own, and at most MAX_WAITING wait;
 * past that a login gets a temporary refusal (454) at once instead of a place in a queue without
 * end. The thread starts on first use and is replaced if it dies.
 */
import { Worker } from 'node:worker_threads';
import { SmtpError } from '../errors/smtp-error.js';
import type { CheckAnswer, CheckJob } from './password-worker.js';

/** checks waiting for the thread at most: a few seconds of hashing */
const MAX_WAITING = 64;
const WORKER_ENTRY = new URL('./password-worker.js', import.meta.url);

export class PasswordChecker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(ok: boolean): void; reject(err: Error): void }>();

  /** Whether `password` matches `stored`; an SmtpError (454) when too many checks wait already. */
  verify(password: string, stored: string): Promise<boolean> {
    if (this.waiting.size >= MAX_WAITING) return Promise.reject(SmtpError.authBusy());
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      const job: CheckJob = { id, password, stored };
      worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    const worker = new Worker(WORKER_ENTRY);
    worker.unref();
    worker.on('message', (answer: CheckAnswer) => {
      const w = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      if (!w) return;
      if ('error' in answer) w.reject(new Error(`password check failed: ${answer.error}`));
      else w.resolve(answer.ok);
    });
    const gone = () => {
      if (this.worker === worker) this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(SmtpError.authBusy());
      this.waiting.clear();
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    this.worker = worker;
    return worker;
  }
}
