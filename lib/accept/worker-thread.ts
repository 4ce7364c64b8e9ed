/**
 * A worker thread that answers requests by id, for work that must not run on the event loop or
 * on libuv's thread pool (password hashing, parsing huge JSON bodies). Started on first use and
 * unref'd (it never keeps the process alive); when it dies, every request it held fails with the
 * caller's error, and the next request starts a new one.
 *
 * A request is a session: messages posted to the thread it started on (none once that thread is
 * gone), then one message whose answer, `{ id, … }`, settles it.
 */
import { Worker } from 'node:worker_threads';

export interface ThreadSession<Answer> {
  id: number;
  post(message: unknown): void;
  /** posts the last message and resolves with the thread's answer to it */
  answer(message: unknown): Promise<Answer>;
}

export class WorkerThread<Answer extends { id: number }> {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(a: Answer): void; reject(e: Error): void }>();

  /** `gone()` makes the error of a request whose thread died */
  constructor(
    private readonly entry: URL,
    private readonly gone: () => Error,
  ) {}

  /** requests waiting for their answer */
  get waitingCount(): number {
    return this.waiting.size;
  }

  session(): ThreadSession<Answer> {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const live = () => this.worker === worker;
    return {
      id,
      post: (message) => {
        if (live()) worker.postMessage(message);
      },
      answer: (message) =>
        new Promise<Answer>((resolve, reject) => {
          if (!live()) return reject(this.gone());
          this.waiting.set(id, { resolve, reject });
          worker.postMessage(message);
        }),
    };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    const worker = new Worker(this.entry);
    worker.unref();
    worker.on('message', (answer: Answer) => {
      const waiter = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      waiter?.resolve(answer);
    });
    const gone = () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(this.gone());
      this.waiting.clear();
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    this.worker = worker;
    return worker;
  }
}
