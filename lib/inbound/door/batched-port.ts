/**
 * Messages between the door thread and the master go in batches: everything one side has to say
 * during one turn of its event loop leaves in one postMessage, at the end of that turn
 * (setImmediate: after the turn's I/O callbacks, before the next wait for I/O).
 *
 * Each postMessage wakes the other thread when it is waiting for I/O, and that wake-up, not the
 * copying, is what a message costs: with one postMessage per message, posting was an eighth of
 * the door thread's time under bench:inbound's load. A turn that serves twenty sessions sends
 * their questions, bytes and answers together, and a lone session waits for nothing extra.
 */
export interface PortLike {
  postMessage(value: unknown, transfer?: readonly ArrayBuffer[]): void;
}

export class BatchedPort<M> {
  private batch: M[] = [];
  private transfer: ArrayBuffer[] = [];
  private scheduled = false;

  constructor(private readonly port: PortLike) {}

  /** Queues `message` (and moves `transfer` with it) for the end of this turn. */
  send(message: M, transfer?: ArrayBuffer): void {
    this.batch.push(message);
    if (transfer) this.transfer.push(transfer);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const batch = this.batch;
    const transfer = this.transfer;
    this.batch = [];
    this.transfer = [];
    this.port.postMessage(batch, transfer);
  };
}
