/**
 * One POP3 client's socket: command lines in (through the LineReader), replies out, the deadlines,
 * and the switch to TLS. The session (session.ts) asks for one line at a time and answers it; this
 * file knows nothing of commands.
 *
 * Invariants:
 * - memory per connection is bounded: at most MAX_QUEUED_LINES pipelined lines are held (the
 *   socket is paused beyond), one unfinished line under the line limit, and every write waits for
 *   the socket to drain before the next one, so a client that does not read holds no more than
 *   one chunk of a message;
 * - deadlines: a command line must be complete within commandTimeout of its first byte; the next
 *   command must come within socketTimeout; a reply must be read by the client within
 *   socketTimeout; the session ends at sessionTimeout. Past one, a client waiting for a reply
 *   gets a last "-ERR" line, one in the middle of a message is cut off (an error line there would
 *   read as message text), and the connection closes;
 * - after STLS nothing the client sent in the clear before the handshake is read (RFC 2595 §4).
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import { Pop3Error } from './errors.js';
import { LineReader } from './line-reader.js';

export interface ConnectionLimits {
  socketTimeoutMs: number;
  commandTimeoutMs: number;
  sessionTimeoutMs: number;
  maxLineBytes: number;
}

/** Pipelined lines held before the socket is paused. */
const MAX_QUEUED_LINES = 64;
/** After our last byte, how long a client has to close its side before the socket is destroyed. */
const CLOSE_GRACE_MS = 5000;

const CRLF = '\r\n';

/** What readLine() gives besides a line: the client went away, or a deadline or limit ended it. */
export const CLOSED = Symbol('closed');

export class Pop3Connection {
  private socket: Socket;
  private readonly reader: LineReader;
  private readonly queued: (string | Pop3Error)[] = [];
  private waiter: ((line: string | typeof CLOSED) => void) | undefined;
  private closed = false;
  /** the client has closed its side: what it sent is answered, then the session ends */
  private ended = false;
  private paused = false;
  private lineTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly sessionTimer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer) => this.received(chunk);
  private readonly onGone = () => this.gone();
  private readonly onEnd = () => {
    this.ended = true;
    if (this.waiter && !this.queued.length) this.finish();
  };
  /** resolves when the socket has closed */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  readonly remoteAddress: string;
  secure = false;

  constructor(
    socket: Socket,
    private readonly limits: ConnectionLimits,
  ) {
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress ?? '';
    this.reader = new LineReader(limits.maxLineBytes);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.sessionTimer = setTimeout(() => this.expire(Pop3Error.timeout('The session', limits.sessionTimeoutMs)), limits.sessionTimeoutMs);
    this.sessionTimer.unref();
    this.attach(socket);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Whether the session is waiting for the client's next command (it may be told to go). */
  get waiting(): boolean {
    return this.waiter !== undefined;
  }

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.once('end', this.onEnd);
    socket.on('error', () => undefined); // a reset by the peer ends the session like a close
    socket.once('close', this.onGone);
  }

  private received(chunk: Buffer): void {
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const { lines, tooLong } = this.reader.push(chunk);
    // one read may hold tens of thousands of short lines: no spread into push()
    for (const line of lines) this.queued.push(line);
    if (tooLong) {
      this.queued.push(Pop3Error.lineTooLong(this.limits.maxLineBytes));
      this.socket.off('data', this.onData);
    }
    if (this.reader.partial === 0) {
      clearTimeout(this.lineTimer);
      this.lineTimer = undefined;
    } else if (lines.length || !this.lineTimer) {
      // a new unfinished line starts its own deadline
      clearTimeout(this.lineTimer);
      this.lineTimer = setTimeout(() => this.expire(Pop3Error.timeout('A command line', this.limits.commandTimeoutMs)), this.limits.commandTimeoutMs);
      this.lineTimer.unref();
    }
    if (this.queued.length >= MAX_QUEUED_LINES && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    this.deliver();
  }

  private deliver(): void {
    if (!this.waiter || !this.queued.length) return;
    const next = this.queued.shift()!;
    const waiter = this.waiter;
    this.waiter = undefined;
    if (this.paused && this.queued.length < MAX_QUEUED_LINES / 2) {
      this.paused = false;
      this.socket.resume();
    }
    if (next instanceof Pop3Error) {
      this.finish(next);
      waiter(CLOSED);
    } else {
      waiter(next);
    }
  }

  /** The next command line; CLOSED when the client left or a deadline or limit closed the session. */
  readLine(): Promise<string | typeof CLOSED> {
    if (this.closed) return Promise.resolve(CLOSED);
    if (this.ended && !this.queued.length) {
      this.finish();
      return Promise.resolve(CLOSED);
    }
    return new Promise((resolve) => {
      this.waiter = resolve;
      if (this.queued.length) return this.deliver();
      if (this.reader.partial === 0 && !this.idleTimer) {
        this.idleTimer = setTimeout(() => this.expire(Pop3Error.timeout('Waiting for a command', this.limits.socketTimeoutMs)), this.limits.socketTimeoutMs);
        this.idleTimer.unref();
      }
    });
  }

  /** Sends reply lines (CRLF added) and waits until the client has taken them. */
  async send(...lines: string[]): Promise<void> {
    await this.write(lines.join(CRLF) + CRLF);
  }

  /** Sends bytes as they come, each chunk only after the client has read the one before. */
  async stream(chunks: AsyncIterable<Buffer>): Promise<void> {
    for await (const chunk of chunks) {
      if (this.closed) throw new Error('connection closed during a transfer');
      await this.write(chunk);
    }
  }

  private async write(data: string | Buffer): Promise<void> {
    if (this.closed) return;
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        // the client stopped reading: the session ends here, whatever it was sending
        this.destroy();
        resolve();
      }, this.limits.socketTimeoutMs);
      timer.unref();
      const settle = () => {
        clearTimeout(timer);
        this.socket.off('drain', settle);
        this.socket.off('close', settle);
        resolve();
      };
      this.socket.once('drain', settle);
      this.socket.once('close', settle);
    });
  }

  /**
   * Sends `okLine` (STLS's "+OK") and switches to TLS. Resolves true once the handshake is done,
   * false when it failed or did not finish within commandTimeout (the connection is closed).
   */
  startTls(context: SecureContext, okLine: string): Promise<boolean> {
    // what came after STLS in the clear must not be read as said inside TLS
    this.queued.length = 0;
    this.reader.reset();
    clearTimeout(this.lineTimer);
    this.lineTimer = undefined;
    const plain = this.socket;
    plain.off('data', this.onData);
    plain.off('end', this.onEnd);
    // the reply and the switch in one tick: the client's handshake cannot be read as a command
    plain.write(okLine + CRLF);
    const secure = new TLSSocket(plain, { isServer: true, secureContext: context });
    this.socket = secure;
    this.attach(secure);
    if (this.paused) {
      this.paused = false;
      plain.resume();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.destroy();
        resolve(false);
      }, this.limits.commandTimeoutMs);
      timer.unref();
      secure.once('secure', () => {
        clearTimeout(timer);
        this.secure = true;
        resolve(true);
      });
      secure.once('close', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
  }

  /** Sends `last` (if any), then closes: the client's side gets CLOSE_GRACE_MS to close too. */
  finish(last?: Pop3Error): void {
    if (this.closed) return;
    if (last) this.socket.write(last.replyText + CRLF);
    this.closed = true;
    this.clearTimers();
    this.socket.end();
    setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS).unref();
    this.release();
  }

  /** Closes at once (a transfer cut off, a client that does not read). */
  destroy(): void {
    this.closed = true;
    this.clearTimers();
    this.socket.destroy();
    this.release();
  }

  /** A deadline passed: a client waiting for a reply is told why; one mid-reply is cut off. */
  private expire(err: Pop3Error): void {
    if (this.closed) return;
    if (this.waiting) this.finish(err);
    else this.destroy();
  }

  private gone(): void {
    this.closed = true;
    this.clearTimers();
    this.release();
    this.resolveDone();
  }

  /** The session stops waiting for a line that will not come. */
  private release(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.(CLOSED);
  }

  private clearTimers(): void {
    clearTimeout(this.sessionTimer);
    clearTimeout(this.lineTimer);
    clearTimeout(this.idleTimer);
  }
}
