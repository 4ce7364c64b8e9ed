/**
 * The door thread's line to the master (protocol.ts): the requests the receiver's decisions need
 * (hooks, aliases, admission), the hand-over of a message's raw bytes with its flow control, and
 * the master's state as last told. Runs on the door thread.
 */
import { finished } from 'node:stream';
import type { SMTPServerAddress, SMTPServerDataStream } from 'smtp-server';
import type { InboxTarget } from '../recipients.js';
import { DATA_WINDOW_BYTES, type AnswerValue, type DoorAnswer, type DoorHook, type DoorRefusal, type DoorSession, type DoorState, type MasterMessage, type ThreadMessage } from './protocol.js';

/** A refusal the master decided: the reply as it chose it, counted under its reason. */
export class MasterRefusal extends Error {
  readonly responseCode: number;
  readonly replyText: string;
  readonly reason: DoorRefusal['reason'];

  constructor(refusal: DoorRefusal) {
    super(refusal.text);
    this.responseCode = refusal.code;
    this.replyText = refusal.text;
    this.reason = refusal.reason;
  }
}

export class MasterLink {
  /** the master's state as it last told it */
  state: DoorState;
  private readonly hooks: ReadonlySet<DoorHook>;
  private readonly waiting = new Map<number, (answer: DoorAnswer) => void>();
  private readonly acks = new Map<number, (bytes: number) => void>();
  private nextId = 1;

  constructor(
    private readonly send: (message: ThreadMessage, transfer?: ArrayBuffer) => void,
    setup: { hooks: readonly DoorHook[]; state: DoorState },
  ) {
    this.hooks = new Set(setup.hooks);
    this.state = setup.state;
  }

  /** Takes the master's answers, acknowledgements and state; false for what is not for the link. */
  take(m: MasterMessage): boolean {
    switch (m.type) {
      case 'answer': {
        const settle = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        settle?.(m);
        return true;
      }
      case 'ack':
        this.acks.get(m.id)?.(m.bytes);
        return true;
      case 'state': {
        const { overloaded, storeWritable, storeOverLimit } = m;
        this.state = { overloaded, storeWritable, storeOverLimit };
        return true;
      }
      default:
        return false;
    }
  }

  /** Whether a plugin registered this hook (the others pass without asking). */
  has(hook: DoorHook): boolean {
    return this.hooks.has(hook);
  }

  /** Runs a plugin's gate hook in the master; rejects with its refusal. */
  async hook(hook: DoorHook, session: DoorSession, address?: SMTPServerAddress): Promise<void> {
    if (!this.has(hook)) return;
    await this.ask((id) => (hook === 'inbound:connect' ? { type: 'ask', id, what: 'hook', hook, session } : { type: 'ask', id, what: 'hook', hook, address: address!, session }));
  }

  /** The inbox an altinbox alias delivers to, or undefined when it is not one given out. */
  alias(inbox: string): Promise<string | undefined> {
    return this.ask((id) => ({ type: 'ask', id, what: 'alias', inbox }));
  }

  /** The store's own admission (trimming the oldest first when it is over its size); rejects when it refuses. */
  async admission(): Promise<void> {
    await this.ask((id) => ({ type: 'ask', id, what: 'admission' }));
  }

  /**
   * Hands a message's raw bytes to the master as they arrive and resolves with the 250's text
   * once it is stored. The stream is paused while DATA_WINDOW_BYTES wait for the master.
   */
  receive(stream: SMTPServerDataStream, session: DoorSession, rcpts: InboxTarget[], onBytes: (n: number) => void): Promise<string> {
    const id = this.nextId++;
    const answer = this.answerTo(id);
    // the request goes with the message's first bytes: after the 354 the client sends nothing
    // else, and a request sent alone would wake the master for nothing to do yet
    let started = false;
    const send = (message: ThreadMessage, transfer?: ArrayBuffer) => {
      if (!started) {
        started = true;
        this.send({ type: 'data', id, session, rcpts });
      }
      this.send(message, transfer);
    };
    let unacked = 0;
    this.acks.set(id, (bytes) => {
      unacked -= bytes;
      if (unacked < DATA_WINDOW_BYTES && stream.isPaused()) stream.resume();
    });
    stream.on('data', (chunk: Buffer) => {
      // a copy of exactly this chunk, moved to the master: a clone would carry the whole
      // ArrayBuffer the chunk is a view of (a socket read, or Node's shared pool)
      const bytes = new Uint8Array(chunk);
      send({ type: 'chunk', id, bytes }, bytes.buffer as ArrayBuffer);
      onBytes(chunk.length);
      unacked += chunk.length;
      if (unacked >= DATA_WINDOW_BYTES) stream.pause();
    });
    finished(stream, (err) => send(err ? { type: 'abort', id } : { type: 'end', id }));
    return answer.then(
      (value) => {
        this.settled(id, stream);
        return value ?? '';
      },
      (err: unknown) => {
        this.settled(id, stream);
        throw err;
      },
    );
  }

  /** The master read the message to its end: whatever still comes is dropped there. */
  private settled(id: number, stream: SMTPServerDataStream): void {
    this.acks.delete(id);
    if (stream.isPaused()) stream.resume();
  }

  private ask(make: (id: number) => ThreadMessage): Promise<AnswerValue> {
    const id = this.nextId++;
    const answer = this.answerTo(id);
    this.send(make(id));
    return answer;
  }

  private answerTo(id: number): Promise<AnswerValue> {
    return new Promise((resolve, reject) => {
      this.waiting.set(id, (a) => (a.ok ? resolve(a.value) : reject(new MasterRefusal(a.refusal))));
    });
  }
}
