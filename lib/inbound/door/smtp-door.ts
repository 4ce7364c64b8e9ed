/**
 * The master's end of the inbound SMTP door: starts the door thread (door-thread.ts), answers what
 * it asks (plugin hooks, aliases, the store's admission), takes each message it hands over into the
 * inbox, tells it the master's state as it changes, and adds up its counters for the metrics
 * (protocol.ts has the messages).
 *
 * Why a thread: under a flood of one-message sessions, smtp-server's session handling and its
 * reply writes were half of the master's event loop (bench/README.md, "Inbound benchmark"). On the
 * thread they run beside the store, the API and the parser instead of before them.
 *
 * Invariants:
 * - the thread stores nothing: a 250 is given only for an id the inbox returned, once the message
 *   is durable;
 * - a thread that dies (a bug in a session's handling) takes only its sessions with it: the
 *   messages it was handing over fail their receipt (nothing half-stored is listed; a client that
 *   got no 250 sends again), and a new thread listens on the same port after a pause that grows
 *   while it keeps dying (DOOR_RESTART_MS), logged as INBOUND_DOOR_FAILED;
 * - the state the thread decides with reaches it before any answer given after the change (one
 *   ordered port), so a client that saw a 451 from a failing store is refused at its next MAIL;
 * - stop: the thread stops listening and ends its sessions (smtp-server's close: 421 to the idle
 *   ones), every message under way is answered first, then the thread ends.
 */
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import { SmtpError, asSmtpError } from '../../errors/smtp-error.js';
import type { HookRunner } from '../../plugins/runner.js';
import { isStoreUnavailable } from '../../store/write-guard.js';
import type { Inbox } from '../inbox.js';
import type { LoadGate } from '../load-gate.js';
import { reasonFor, type RejectReason } from '../metrics.js';
import type { InboxTarget } from '../recipients.js';
import { BatchedPort } from './batched-port.js';
import { DATA_ACK_BYTES, type AnswerValue, type DoorAsk, type DoorCounters, type DoorHook, type DoorRefusal, type DoorSession, type DoorSetup, type DoorState, type MasterMessage, type ThreadMessage } from './protocol.js';
import { relogLine } from './thread-log.js';

/** Pause before a new thread after one died: the first, and the longest while it keeps dying. */
export const DOOR_RESTART_MS = { first: 250, max: 10_000 } as const;
/** A thread that ran this long before dying counts as healthy: the next pause is the first again. */
const HEALTHY_AFTER_MS = 60_000;
/** Raw bytes of one message the master buffers before the store has read them. */
const SOURCE_BUFFER_BYTES = 64 * 1024;
/** How often the master looks whether its state changed (the load gate samples every 250 ms). */
const STATE_CHECK_MS = 50;
/** A pull of the door's counters that gets no answer in this time is answered with the last ones. */
const PULL_TIMEOUT_MS = 2000;
const DOOR_HOOKS: readonly DoorHook[] = ['inbound:connect', 'inbound:mail_from', 'inbound:rcpt_to'];

export interface SmtpDoorDeps {
  config: Config;
  inbox: Inbox;
  gate: LoadGate;
  hooks: HookRunner;
  logger: Logger;
  /** told of every message stored, with its inboxes (the metrics count it) */
  onStored: (inboxes: string[]) => void;
}

/**
 * One message the thread hands over, as the Readable the inbox reads. Bytes are acknowledged to
 * the thread once the stream has room for them, DATA_ACK_BYTES at a time, so the thread's window
 * plus this buffer bound what a message holds in memory.
 */
class IncomingMessage {
  readonly source: Readable;
  private unacked = 0;

  constructor(private readonly ack: (bytes: number) => void) {
    this.source = new Readable({ highWaterMark: SOURCE_BUFFER_BYTES, read: () => this.acknowledge() });
  }

  push(bytes: Uint8Array): void {
    if (this.source.destroyed) return;
    this.unacked += bytes.length;
    if (this.source.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) this.acknowledge();
  }

  private acknowledge(): void {
    if (this.unacked < DATA_ACK_BYTES) return;
    this.ack(this.unacked);
    this.unacked = 0;
  }
}

const ZERO: DoorCounters = { connections: { accepted: 0, refused: 0 }, rejected: {}, throttled: { connections_per_ip: 0, messages_per_ip: 0, messages_per_sender_domain: 0, messages_per_inbox: 0 }, loadRefused: 0, lagMs: 0 };

/** `a` + `b`, counter by counter (the lag is the latest's). */
function addCounters(a: DoorCounters, b: DoorCounters): DoorCounters {
  const sum = (x: Record<string, number | undefined>, y: Record<string, number | undefined>) => {
    const out: Record<string, number> = {};
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) out[k] = (x[k] ?? 0) + (y[k] ?? 0);
    return out;
  };
  return {
    connections: sum(a.connections, b.connections) as DoorCounters['connections'],
    rejected: sum(a.rejected, b.rejected),
    throttled: sum(a.throttled, b.throttled) as DoorCounters['throttled'],
    loadRefused: a.loadRefused + b.loadRefused,
    lagMs: b.lagMs,
  };
}

export class SmtpDoor {
  private worker: Worker | undefined;
  private post: ((message: MasterMessage) => void) | undefined;
  /** the port to listen on: the configured one until the first thread listens, then the one it got */
  private port: number;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private failuresInARow = 0;
  private startedAt = 0;
  private onStopped: (() => void) | undefined;
  private told: DoorState | undefined;
  /** the counters of the threads that ended, and the last the running one reported */
  private retired: DoorCounters = ZERO;
  private latest: DoorCounters = ZERO;
  private readonly pulls = new Map<number, (c: DoorCounters) => void>();
  private nextPull = 1;

  constructor(private readonly deps: SmtpDoorDeps) {
    this.port = deps.config.inbound.port;
  }

  /** The thread now serving (tests make it fail; undefined between a failure and its restart). */
  get thread(): Worker | undefined {
    return this.worker;
  }

  /** Starts the thread; resolves with the address it listens on, or rejects with the listen error. */
  async start(): Promise<AddressInfo> {
    const address = await this.spawn();
    this.stateTimer = setInterval(() => this.tellState(), STATE_CHECK_MS);
    this.stateTimer.unref();
    return address;
  }

  /** Stops listening; open sessions end (421 from smtp-server's close) and messages under way are answered first. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.stateTimer);
    const worker = this.worker;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      this.onStopped = resolve;
      worker.once('exit', () => resolve());
      this.post?.({ type: 'stop' });
    });
    this.retire();
    this.worker = undefined;
    await worker.terminate();
  }

  /** The door's counters since start, across its threads. */
  counters(): Promise<DoorCounters> {
    const post = this.post;
    if (!post) return Promise.resolve(addCounters(this.retired, this.latest));
    const id = this.nextPull++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(this.latest), PULL_TIMEOUT_MS);
      const settle = (c: DoorCounters) => {
        clearTimeout(timer);
        this.pulls.delete(id);
        resolve(addCounters(this.retired, c));
      };
      this.pulls.set(id, settle);
      post({ type: 'pull', id });
    });
  }

  private state(): DoorState {
    const { inbox, gate } = this.deps;
    return { overloaded: gate.overloaded, storeWritable: inbox.writable, storeOverLimit: inbox.overLimit };
  }

  /** Tells the thread the master's state when it changed since it was last told. */
  private tellState(): void {
    const now = this.state();
    const told = this.told;
    if (told && told.overloaded === now.overloaded && told.storeWritable === now.storeWritable && told.storeOverLimit === now.storeOverLimit) return;
    this.told = now;
    this.post?.({ type: 'state', ...now });
  }

  /** What a thread that ended had counted (as last reported) is kept for the metrics. */
  private retire(): void {
    this.retired = addCounters(this.retired, this.latest);
    this.latest = ZERO;
  }

  private spawn(): Promise<AddressInfo> {
    const { config, hooks, logger } = this.deps;
    this.told = this.state();
    const setup: DoorSetup = {
      config: config.inbound,
      hostname: config.hostname,
      port: this.port,
      logLevel: logger.level,
      hooks: DOOR_HOOKS.filter((h) => hooks.has(h)),
      state: this.told,
    };
    const worker = new Worker(new URL('./door-thread.js', import.meta.url), { workerData: setup });
    this.worker = worker;
    const incoming = new Map<number, IncomingMessage>();
    // nothing goes to a thread that has ended (or was replaced)
    const batches = new BatchedPort<MasterMessage>({ postMessage: (batch, transfer) => this.worker === worker && worker.postMessage(batch, transfer) });
    const post = (this.post = (message: MasterMessage) => batches.send(message));
    return new Promise<AddressInfo>((resolve, reject) => {
      let listening = false;
      let failure: Error | undefined;
      worker.on('message', (batch: ThreadMessage[]) => {
        for (const m of batch) {
          if (m.type === 'ready') {
            listening = true;
            this.port = m.address.port;
            this.startedAt = Date.now();
            resolve(m.address);
          } else if (m.type === 'listenFailed') {
            reject(Object.assign(new Error(m.error.message), m.error));
          } else {
            this.handle(m, incoming, post);
          }
        }
      });
      // an exception the thread did not catch; 'exit' follows
      worker.on('error', (err) => (failure = err));
      worker.on('exit', (code) => {
        // what the thread was handing over cannot end now: those receipts fail, nothing of them is kept
        for (const message of incoming.values()) message.source.destroy(new Error('the inbound SMTP door thread ended'));
        incoming.clear();
        if (this.worker !== worker) return;
        this.worker = undefined;
        this.post = undefined;
        this.retire();
        for (const settle of this.pulls.values()) settle(ZERO);
        if (!listening) return reject(failure ?? new Error(`the inbound SMTP door thread ended (exit code ${code}) before it listened`));
        if (this.stopping) return this.onStopped?.();
        this.restartLater(code, failure);
      });
    });
  }

  /** Logs the failure and starts a new thread after a pause (longer each time it fails again soon). */
  private restartLater(exitCode: number | undefined, err: Error | undefined): void {
    this.failuresInARow = Date.now() - this.startedAt >= HEALTHY_AFTER_MS ? 1 : this.failuresInARow + 1;
    const delayMs = Math.min(DOOR_RESTART_MS.max, DOOR_RESTART_MS.first * 2 ** (this.failuresInARow - 1));
    const what = err ? `failed: ${err.message}` : exitCode === undefined ? 'could not listen again' : `ended (exit code ${exitCode})`;
    this.deps.logger.error({ event: 'INBOUND_DOOR_FAILED', err, exitCode, restartInMs: delayMs }, `the inbound SMTP door thread ${what}; a new one listens in ${delayMs} ms`);
    this.restartTimer = setTimeout(() => {
      if (this.stopping) return;
      this.spawn().then(
        (address) => this.deps.logger.info({ event: 'LISTENING', listener: 'inbound', address: address.address, port: address.port }, `inbound SMTP door listening again on ${address.address}:${address.port}`),
        (listenErr: Error) => {
          if (!this.stopping) this.restartLater(undefined, listenErr);
        },
      );
    }, delayMs);
  }

  private handle(m: Exclude<ThreadMessage, { type: 'ready' | 'listenFailed' }>, incoming: Map<number, IncomingMessage>, post: (message: MasterMessage) => void): void {
    switch (m.type) {
      case 'ask':
        return void this.decide(() => this.ask(m)).then((answer) => post({ ...answer, id: m.id }));
      case 'data': {
        const message = new IncomingMessage((bytes) => post({ type: 'ack', id: m.id, bytes }));
        incoming.set(m.id, message);
        void this.decide(() => this.receive(message.source, m.session, m.rcpts)).then((answer) => {
          incoming.delete(m.id);
          // a store that failed or filled up with this message is told before the answer
          this.tellState();
          post({ ...answer, id: m.id });
        });
        return;
      }
      case 'chunk':
        return incoming.get(m.id)?.push(m.bytes);
      case 'end':
        return void incoming.get(m.id)?.source.push(null);
      case 'abort':
        // the client went away during DATA: the receipt fails as a cut-off stream does
        return void incoming.get(m.id)?.source.destroy();
      case 'counters':
        this.latest = m.counters;
        return this.pulls.get(m.id)?.(m.counters);
      case 'log':
        return relogLine(this.deps.logger, m.line);
      case 'stopped':
        return this.onStopped?.();
    }
  }

  /** Runs what the thread asked; a refusal becomes its reply with the reason the metrics count it under. */
  private async decide(work: () => Promise<AnswerValue>): Promise<{ type: 'answer'; ok: true; value: AnswerValue } | { type: 'answer'; ok: false; refusal: DoorRefusal }> {
    try {
      return { type: 'answer', ok: true, value: await work() };
    } catch (err) {
      // a read of the store while it reopens after a failed write (an alias at RCPT): try again later
      const smtpErr = asSmtpError(err, () => (isStoreUnavailable(err) ? SmtpError.storageFailed() : SmtpError.hookFailed()));
      return { type: 'answer', ok: false, refusal: { code: smtpErr.responseCode, text: smtpErr.replyText, reason: reasonOf(smtpErr, err) } };
    }
  }

  private async ask(m: DoorAsk): Promise<AnswerValue> {
    const { hooks, inbox } = this.deps;
    switch (m.what) {
      case 'hook':
        if (m.hook === 'inbound:connect') await hooks.run(m.hook, m.session);
        else await hooks.run(m.hook, m.address, m.session);
        return undefined;
      case 'alias':
        return inbox.aliases.resolve(m.inbox);
      case 'admission': {
        const refusal = await inbox.admission();
        if (refusal) throw refusal;
        return undefined;
      }
    }
  }

  /** Stores a message for its recipients and gives the 250's text once it is durable. */
  private async receive(source: Readable, session: DoorSession, rcpts: InboxTarget[]): Promise<string> {
    const { inbox, config, onStored } = this.deps;
    const tls = session.tlsOptions;
    const id = await inbox.receive({
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcpts,
      client: {
        ip: session.remoteAddress,
        helo: session.hostNameAppearsAs ?? '',
        tls: Boolean(session.secure),
        ...(session.secure && tls ? { tlsProtocol: tls.version, tlsCipher: tls.name } : {}),
      },
      source,
      maxSizeBytes: config.inbound.maxSize,
    });
    onStored(rcpts.map((r) => r.inbox));
    return `Ok: queued as ${id}`;
  }
}

/** The bounded `reason` label of a refusal the master decided. */
function reasonOf(err: SmtpError, original: unknown): RejectReason {
  if (isStoreUnavailable(original)) return 'store_failed';
  if (!(original instanceof SmtpError)) return 'plugin';
  return reasonFor(err);
}
