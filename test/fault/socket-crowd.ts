/**
 * A crowd of hostile SMTP clients for the F9 tests (idle and trickling clients): N
 * sockets from a list of loopback source addresses, opened in steps, that then sit idle or
 * trickle bytes (one at a time, never completing what the server waits for), optionally
 * reconnecting when the server closes them, as slowloris tools do.
 *
 * Each socket's story is recorded: when it opened, its greeting, when it closed and the last
 * reply before the close (the server's reason, "421 4.4.2 Command timed out" say).
 *
 * Bounded: every socket is destroyed by us after maxLifeMs whatever happens, reconnections stop
 * at stop() or after maxReconnects, and stop() destroys everything still open.
 */
import net from 'node:net';

export interface CrowdOptions {
  port: number;
  /** source addresses, round-robin: socket i comes from addresses[i % addresses.length] */
  addresses: readonly string[];
  count: number;
  /** sockets opened per step, and the pause between steps */
  stepSize?: number;
  stepPauseMs?: number;
  /**
   * before a step, wait (up to 10 s) until fewer sockets than this await their greeting: a burst
   * past the listener's accept queue (Node's backlog, 511) makes the kernel drop handshakes, and
   * a client whose handshake was dropped after its SYN-ACK waits for a greeting that never comes
   */
  maxPending?: number;
  /** sent once the greeting came (an envelope up to DATA, say) */
  preamble?: string;
  /** the trickle starts when the replies so far match this (default: at the greeting) */
  trickleAfter?: RegExp;
  /** bytes sent one at a time, cycling, one every trickleEveryMs; none: the socket sits idle */
  trickle?: string;
  trickleEveryMs?: number;
  /** reconnect this long after the server closed a socket (until stop() or maxReconnects) */
  reconnectAfterMs?: number;
  maxReconnects?: number;
  /** we destroy each socket after this long at the latest */
  maxLifeMs: number;
}

export interface CrowdSocket {
  address: string;
  openedAt: number;
  /** when the TCP connection was up (unset: it never was) */
  connectedAt?: number;
  /** the greeting's first line ("220 …" or a refusal like "421 4.7.0 …"), and when it came */
  greeting?: string;
  greetedAt?: number;
  /** the last complete reply line the server sent */
  lastReply?: string;
  /** when the server closed the connection (unset when we closed it or it is open) */
  closedByServerAt?: number;
  /** when the socket closed, by whoever */
  closedAt?: number;
  /** a connect error, if any */
  error?: string;
}

export class SocketCrowd {
  readonly sockets: CrowdSocket[] = [];
  private readonly live = new Set<net.Socket>();
  private reconnects = 0;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(private readonly opts: CrowdOptions) {}

  /** Opens the crowd; resolves once every first socket has its greeting or is closed. */
  static async open(opts: CrowdOptions): Promise<SocketCrowd> {
    const crowd = new SocketCrowd(opts);
    const step = opts.stepSize ?? 200;
    const firsts: Promise<void>[] = [];
    const pending = () => crowd.sockets.reduce((n, s) => n + (s.greeting === undefined && s.closedAt === undefined ? 1 : 0), 0);
    for (let i = 0; i < opts.count; i += step) {
      const until = Date.now() + 10_000;
      while (opts.maxPending && pending() >= opts.maxPending && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      for (let k = i; k < Math.min(opts.count, i + step); k++) firsts.push(crowd.connect(opts.addresses[k % opts.addresses.length]!));
      if (opts.stepPauseMs) await new Promise((r) => setTimeout(r, opts.stepPauseMs));
    }
    await Promise.all(firsts);
    return crowd;
  }

  /** Sockets open now. */
  get openCount(): number {
    return this.live.size;
  }

  /** Destroys every socket and stops reconnecting; resolves when all are closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closing = [...this.live].map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    for (const s of this.live) s.destroy();
    await Promise.all(closing);
  }

  private later(fn: () => void, ms: number): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** One socket; resolves at its greeting or its close, whichever comes first. */
  private connect(address: string): Promise<void> {
    const { opts } = this;
    const record: CrowdSocket = { address, openedAt: Date.now() };
    this.sockets.push(record);
    const socket = net.connect({ host: '127.0.0.1', port: opts.port, localAddress: address });
    this.live.add(socket);
    let text = '';
    let trickling = false;
    let sent = 0;
    let trickleTimer: NodeJS.Timeout | undefined;
    const life = setTimeout(() => socket.destroy(), opts.maxLifeMs);
    return new Promise<void>((settled) => {
      const trickle = () => {
        if (!opts.trickle || socket.destroyed) return;
        socket.write(opts.trickle[sent++ % opts.trickle.length]!);
        trickleTimer = setTimeout(trickle, opts.trickleEveryMs ?? 1000);
      };
      socket.once('connect', () => (record.connectedAt = Date.now()));
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => {
        text += d;
        const lines = text.split('\r\n');
        text = lines.pop()!;
        for (const line of lines) {
          if (/^\d{3}[ -]/.test(line) && !/^\d{3}-/.test(line)) record.lastReply = line;
          if (record.greeting === undefined) {
            record.greeting = line;
            record.greetedAt = Date.now();
            settled();
            if (line.startsWith('220') && opts.preamble) socket.write(opts.preamble);
          }
        }
        const ready = record.greeting?.startsWith('220') && (!opts.trickleAfter || opts.trickleAfter.test(record.lastReply ?? ''));
        if (ready && !trickling) {
          trickling = true;
          trickle();
        }
      });
      socket.on('end', () => (record.closedByServerAt ??= Date.now()));
      socket.on('error', (err: NodeJS.ErrnoException) => (record.error ??= err.code ?? err.message));
      socket.on('close', () => {
        clearTimeout(life);
        clearTimeout(trickleTimer);
        record.closedAt = Date.now();
        this.live.delete(socket);
        settled();
        const again = opts.reconnectAfterMs !== undefined && record.closedByServerAt !== undefined;
        if (again && !this.stopped && this.reconnects < (opts.maxReconnects ?? 10_000)) {
          this.reconnects++;
          this.later(() => {
            if (!this.stopped) void this.connect(address);
          }, opts.reconnectAfterMs!);
        }
      });
    });
  }
}
