/**
 * Brings V8's next major collection forward while mail flows through a process.
 *
 * Message bodies live in Buffers, outside V8's heap. Under load a body is held for longer than two
 * young-generation collections (20 SMTP sessions each take tens of milliseconds per message, and a
 * delivery waits its turn), so its Buffers are promoted and only a major collection frees them.
 * V8 starts one of those, incremental and mostly on helper threads, when its own heap has grown or
 * when memory outside it has grown by 64 MB since the last one: relaying 100 KB messages, the
 * master held 40-50 MB of dead bodies at any time, a fifth of all Sluice's memory in the relay
 * benchmark (bench/README.md).
 *
 * After every 16 MB of mail, `note` allocates a 48 MB ArrayBuffer and drops it. V8 counts it as
 * outside memory, so its 64 MB threshold is reached after 16 MB of dead bodies instead of 64, and
 * the collection that follows is V8's own incremental one. (Calling a forced gc() instead costs a
 * full stop-the-world collection, 30-40 ms each in the master: measured, and dropped.) The buffer
 * is never written: a zero-filled allocation this large is a fresh anonymous mapping (above
 * glibc's largest mmap threshold, 32 MB), whose pages are never touched, so it costs no RSS.
 * At most four a second. (Waiting instead until V8 had collected the last one, watched through a
 * WeakRef, let the dead bodies pile up again: the WeakRef kept it alive through several major
 * collections.)
 */
export interface GcNudgeOptions {
  /** mail bytes between nudges */
  everyBytes: number;
  /** size of the dropped buffer; with `everyBytes` it must reach V8's 64 MB */
  ballastBytes: number;
  /** at least this long between nudges */
  minIntervalMs: number;
}

export const GC_NUDGE_DEFAULTS: GcNudgeOptions = { everyBytes: 16 * 1024 * 1024, ballastBytes: 48 * 1024 * 1024, minIntervalMs: 250 };

export class GcNudge {
  private bytes = 0;
  private last = -Infinity;
  /** nudges so far */
  nudges = 0;

  constructor(
    private readonly opts: GcNudgeOptions = GC_NUDGE_DEFAULTS,
    private readonly allocate: (bytes: number) => unknown = (bytes) => new ArrayBuffer(bytes),
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts `n` bytes of mail handled; drops a ballast buffer when enough have gone by. */
  note(n: number): void {
    this.bytes += n;
    if (this.bytes < this.opts.everyBytes) return;
    const now = this.now();
    if (now - this.last < this.opts.minIntervalMs) return;
    this.bytes = 0;
    this.last = now;
    this.nudges++;
    this.allocate(this.opts.ballastBytes);
  }
}
