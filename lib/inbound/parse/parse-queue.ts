/**
 * The messages waiting to be parsed, worked off a few at a time beside the SMTP traffic (the 250
 * never waits for a parse). A reader that needs one message now (the API, right after the 250)
 * moves it to the front and waits for it alone: `ensure`.
 *
 * Each id is parsed by at most one task at a time. A parse that fails (the store could not take
 * the attachments) is tried again a little later, a few times; its "parse me" mark stays in the
 * store, so a restart tries again too.
 */
import type { Logger } from 'pino';

const RETRIES = 3;
const RETRY_AFTER_MS = 2000;

export class ParseQueue {
  /** ids in the order they will be parsed; a Set keeps insertion order and finds ids fast */
  private readonly waiting = new Set<string>();
  private readonly running = new Map<string, Promise<void>>();
  private readonly waiters = new Map<string, (() => void)[]>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly work: (id: string) => Promise<void>,
    private readonly concurrency: number,
    private readonly logger: Logger,
  ) {}

  /** Messages waiting or being parsed. */
  get backlog(): number {
    return this.waiting.size + this.running.size;
  }

  add(id: string): void {
    if (this.stopped || this.running.has(id)) return;
    this.waiting.add(id);
    this.pump();
  }

  /** Resolves once `id` is parsed (or given up on); it goes before everything else waiting. */
  ensure(id: string): Promise<void> {
    const running = this.running.get(id);
    if (running) return running;
    if (!this.waiting.has(id) || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.waiters.get(id) ?? [];
      list.push(resolve);
      this.waiters.set(id, list);
      // the front of the line: a Set re-inserts at the end, so rebuild it with this id first
      const rest = [...this.waiting].filter((w) => w !== id);
      this.waiting.clear();
      for (const w of [id, ...rest]) this.waiting.add(w);
      this.pump();
    });
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.waiting.size) {
      const id = this.waiting.values().next().value!;
      this.waiting.delete(id);
      const task = this.run(id);
      this.running.set(id, task);
      void task.finally(() => {
        this.running.delete(id);
        for (const resolve of this.waiters.get(id) ?? []) resolve();
        this.waiters.delete(id);
        this.pump();
      });
    }
  }

  private async run(id: string): Promise<void> {
    try {
      await this.work(id);
      this.failures.delete(id);
    } catch (err) {
      const failures = (this.failures.get(id) ?? 0) + 1;
      this.logger.warn({ event: 'PARSE_FAILED', err, id, failures }, `parsing inbound message ${id} failed${failures < RETRIES ? '; trying again shortly' : '; it stays unparsed until the next start'}`);
      if (failures >= RETRIES || this.stopped) {
        this.failures.delete(id);
        return;
      }
      this.failures.set(id, failures);
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        this.add(id);
      }, RETRY_AFTER_MS);
      timer.unref();
      this.timers.add(timer);
    }
  }

  /** Takes nothing new and waits for the parses running now. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.waiting.clear();
    await Promise.allSettled([...this.running.values()]);
    for (const list of this.waiters.values()) for (const resolve of list) resolve();
    this.waiters.clear();
  }
}
