/**
 * Runs work one at a time per key: two tasks for the same key never interleave, tasks for
 * different keys run freely. A store uses it per message id, so that recording an outcome and
 * deleting the message (or saving a parse and deleting it) see each other whole.
 */
export class KeyedMutex {
  /** per key: the tail of the work queued for it */
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const run = prev.then(fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return run;
  }
}
