/**
 * smtp-server with the guards a production listener needs and the library leaves to the
 * application, added by subclassing (no fork):
 *
 * - the greeting delay is a setting (the library fixes it at 100 ms, which caps a client that
 *   opens one connection per message near 200 msg/s), and 0 by default for submission;
 * - connections per client are capped (421 4.7.0 over the cap), an IPv6 client by its /64;
 * - an optional screen refuses a client by its address alone (blocklist, connection rate);
 * - a full server sheds the connection that has made no progress for the longest (a client that
 *   connects and trickles without ever completing a command), so that a crowd of slow clients
 *   from many addresses cannot lock real senders out; only when every connection is busy does a
 *   new one get 421. The per-client cap and the screen come first: shedding costs another
 *   client its connection, and is spent only on a newcomer that will be served, so a flood from
 *   one address over its limits cannot shed everyone else's slow sessions one by one;
 * - PROXY protocol peers may be given as CIDR blocks (the library compares exact addresses);
 * - a PROXY header or an implicit TLS handshake must be complete within commandTimeout;
 * - the per-session limits of session-guards.ts (deadlines, junk commands, failed commands);
 * - a client that half-closes still gets its replies before the connection closes;
 * - replies keep the enhanced status code our SmtpError chose (the library would otherwise put
 *   its own table's code in front of ours).
 *
 * These wrap private members of smtp-server, listed in lib/pinned/internals.ts; should an
 * installed smtp-server lack one of them, the server is the library's own (with a warning).
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { clientKey } from '../config/net.js';
import { SmtpError } from '../errors/smtp-error.js';
import { guardsEnabled } from '../pinned/install.js';
import { guardSession, onEveryParser, type SessionLimits, type SessionWatch } from './session-guards.js';

export interface GuardOptions extends SessionLimits {
  greetingDelayMs: number;
  /** connections at once from one client (an IPv6 client: its /64) */
  maxConnectionsPerIp: number;
  /** peers whose connections start with a PROXY header (addresses or CIDR blocks) */
  proxyFrom: (address: string | undefined) => boolean;
  /** clients the per-client cap does not apply to */
  uncapped?: (address: string | undefined) => boolean;
  /** AUTH is offered once TLS is up (submission with users); false: this door never offers it */
  authAfterTls: boolean;
  /** refuses a client by its address before any other connection is shed for it (its reply, then close) */
  screen?: (address: string | undefined) => SmtpError | undefined;
}

/** A connection may be shed for a newcomer only after this long without progress. */
const SHED_AFTER_MS = 1000;

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

export class GuardedSmtpServer extends SMTPServer {
  private readonly perIp = new Map<string, number>();
  private readonly watches = new Map<SMTPConnection, SessionWatch>();
  /** whether the installed smtp-server has every member the guards wrap */
  private readonly guarded = guardsEnabled();

  constructor(
    options: SMTPServerOptions,
    private readonly guard: GuardOptions,
  ) {
    // a client may half-close (send everything, QUIT included, then FIN) and still read the
    // replies; the connection is closed once its last command has been answered, see connect()
    super({ ...options, allowHalfOpen: true });
  }

  /**
   * Listens; resolves with the address, or rejects with the listen error (a port in use).
   * `backlog`: the kernel's queue of connections not yet accepted (Node's default 511; the kernel
   * caps it at net.core.somaxconn).
   */
  async listenOn(port: number, host: string, backlog?: number): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.once('error', onError);
      this.listen(port, host, backlog, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /** Stops listening; open sessions get 421 from smtp-server's close. */
  closeAll(): Promise<void> {
    return new Promise((resolve) => this.close(() => resolve()));
  }

  /** Open connections from one client (an address, or an IPv6 /64), for tests and status. */
  connectionsFrom(ip: string): number {
    return this.perIp.get(clientKey(ip)) ?? 0;
  }

  /** The library matches exact addresses only; ours takes CIDR blocks like trustedNetworks. */
  override _expectsProxyHeader(socket: Socket): boolean {
    if (!this.guarded) return super._expectsProxyHeader(socket);
    return this.guard.proxyFrom(socket.remoteAddress);
  }

  /**
   * Before the session starts (PROXY header, implicit TLS handshake) the library has only an
   * idle timeout, which a byte now and then resets. The session must begin within
   * commandTimeout, like any command line.
   */
  override _acceptSocket(socket: Socket, handshake: boolean): (() => void) | false {
    const release = super._acceptSocket(socket, handshake);
    if (!release || !this.guarded) return release;
    const timer = setTimeout(() => {
      // the topmost socket: destroying a raw socket under a TLS handshake crashes Node
      (this._pendingSockets.get(socket) ?? socket).destroy();
    }, this.guard.commandTimeoutMs);
    timer.unref();
    return () => {
      clearTimeout(timer);
      release();
    };
  }

  override connect(socket: Socket | TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    if (!this.guarded) return super.connect(socket, socketOptions);
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    keepOwnEnhancedCodes(connection);
    answerUnofferedAuth(connection, this.guard.authAfterTls);

    const key = clientKey(connection.remoteAddress);
    const count = (this.perIp.get(key) ?? 0) + 1;
    this.perIp.set(key, count);
    const watch = guardSession(connection, this.guard);
    this.watches.set(connection, watch);
    closeAfterHalfClose(connection);
    socket.once('close', () => {
      watch.clear();
      this.watches.delete(connection);
      const left = (this.perIp.get(key) ?? 1) - 1;
      if (left > 0) this.perIp.set(key, left);
      else this.perIp.delete(key);
    });

    connection._setListeners(() => {
      if (count > this.guard.maxConnectionsPerIp && !this.guard.uncapped?.(connection.remoteAddress)) {
        const err = SmtpError.tooManyConnections();
        return connection.send(421, err.replyText, false);
      }
      const refusal = this.guard.screen?.(connection.remoteAddress);
      if (refusal) {
        connection.send(refusal.responseCode, refusal.replyText, false);
        return connection.close();
      }
      if (this.options.maxClients && this.connections.size > this.options.maxClients && !this.shedOne(connection)) {
        return connection.send(421, `${this.options.name ?? ''} Too many connected clients, try again in a moment`.trim(), false);
      }
      if (this.guard.greetingDelayMs > 0) {
        setTimeout(() => connection.connectionReady(), this.guard.greetingDelayMs).unref();
      } else {
        connection.connectionReady();
      }
    });
  }

  /**
   * Makes room for `newcomer` by closing the connection that has made no progress for the
   * longest, if it has made none for SHED_AFTER_MS. False: every connection is busy.
   */
  private shedOne(newcomer: SMTPConnection): boolean {
    let victim: SMTPConnection | undefined;
    let oldest = Date.now() - SHED_AFTER_MS;
    // strictly older wins: of equals, the connection that came first (the map keeps that order)
    for (const [connection, watch] of this.watches) {
      if (connection === newcomer || connection._closing || connection._closed) continue;
      if (watch.lastProgress < oldest || (!victim && watch.lastProgress === oldest)) {
        oldest = watch.lastProgress;
        victim = connection;
      }
    }
    if (!victim) return false;
    const err = SmtpError.shedIdle();
    victim.send(421, err.replyText, false);
    return true;
  }
}

/**
 * When the client half-closes, the socket pipe ends the parser, and the parser finishes only
 * after every command it holds has been answered (a DATA's 250 included). Then the connection
 * closes; without this it would stay half-open until the idle timeout.
 */
function closeAfterHalfClose(connection: SMTPConnection): void {
  // smtp-server writes a reply only while readyState is 'open'; a half-closed socket is
  // 'writeOnly' and can carry replies all the same
  const socket = connection._socket;
  const readyState = Object.getOwnPropertyDescriptor(net.Socket.prototype, 'readyState')?.get;
  if (readyState) {
    Object.defineProperty(socket, 'readyState', {
      configurable: true,
      get: () => {
        const state = readyState.call(socket) as string;
        return state === 'writeOnly' ? 'open' : state;
      },
    });
  }
  onEveryParser(connection, (parser) => parser.once('finish', () => setImmediate(() => connection.close())));
}

/** Replies whose text already starts with an enhanced code are sent as they are. */
function keepOwnEnhancedCodes(connection: SMTPConnection): void {
  const send = connection.send.bind(connection);
  connection.send = (code, data, context) => {
    if (typeof data === 'string' && ENHANCED.test(data)) return send(code, data, false);
    return send(code, data, context);
  };
}

/**
 * AUTH on a session where it is not offered (see SmtpFeeder.offerCommands) gets 538 when
 * STARTTLS would make it available, else 503 (a door that never offers AUTH must not send the
 * client into a TLS handshake for nothing); the library would say "500 command not recognized"
 * and count it as junk.
 */
function answerUnofferedAuth(connection: SMTPConnection, authAfterTls: boolean): void {
  const onCommand = connection._onCommand.bind(connection);
  connection._onCommand = (command, callback) => {
    const verb = command.subarray(0, 5).toString('latin1').toUpperCase();
    if (connection._ready && !connection._upgrading && !connection._nextHandler && /^AUTH(\s|$)/.test(verb) && connection._isDisabled('AUTH')) {
      const err = authAfterTls && !connection.secure && connection._isSupported('STARTTLS') ? SmtpError.encryptionRequired() : SmtpError.authNotOffered();
      connection.send(err.responseCode, err.replyText);
      return connection._whenWritable(callback ?? (() => undefined));
    }
    return onCommand(command, callback);
  };
}
