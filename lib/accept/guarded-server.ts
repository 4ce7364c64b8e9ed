/**
 * smtp-server with the guards a production listener needs and the library leaves to the
 * application, added by subclassing (no fork):
 *
 * - the greeting delay is a setting (the library fixes it at 100 ms, which caps a client that
 *   opens one connection per message near 200 msg/s), and 0 by default for submission;
 * - connections per client IP are capped (421 4.7.0 over the cap);
 * - PROXY protocol peers may be given as CIDR blocks (the library compares exact addresses);
 * - deadlines the idle timeout cannot give: a command line must be complete within
 *   commandTimeout (and so must a PROXY header or an implicit TLS handshake), a DATA transfer
 *   within dataTimeout, a session within sessionTimeout, so a client trickling one byte at a
 *   time cannot hold a connection for hours — in plaintext and after STARTTLS alike;
 * - a client that half-closes still gets its replies before the connection closes;
 * - replies keep the enhanced status code our SmtpError chose (the library would otherwise put
 *   its own table's code in front of ours).
 */
import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { SmtpError } from '../errors/smtp-error.js';
import { installFastDataScan } from './data-scan.js';

installFastDataScan();

export interface GuardOptions {
  greetingDelayMs: number;
  maxConnectionsPerIp: number;
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  sessionTimeoutMs: number;
  /** peers whose connections start with a PROXY header (addresses or CIDR blocks) */
  proxyFrom: (address: string | undefined) => boolean;
}

const ENHANCED = /^[245]\.\d{1,3}\.\d{1,3} /;

export class GuardedSmtpServer extends SMTPServer {
  private readonly perIp = new Map<string, number>();

  constructor(
    options: SMTPServerOptions,
    private readonly guard: GuardOptions,
  ) {
    // a client may half-close (send everything, QUIT included, then FIN) and still read the
    // replies; the connection is closed once its last command has been answered, see connect()
    super({ ...options, allowHalfOpen: true });
  }

  /** Open connections from one address (for tests and status). */
  connectionsFrom(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  /** The library matches exact addresses only; ours takes CIDR blocks like trustedNetworks. */
  override _expectsProxyHeader(socket: Socket): boolean {
    return this.guard.proxyFrom(socket.remoteAddress);
  }

  /**
   * Before the session starts (PROXY header, implicit TLS handshake) the library has only an
   * idle timeout, which a byte now and then resets. The session must begin within
   * commandTimeout, like any command line.
   */
  override _acceptSocket(socket: Socket, handshake: boolean): (() => void) | false {
    const release = super._acceptSocket(socket, handshake);
    if (!release) return release;
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
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    keepOwnEnhancedCodes(connection);
    answerUnofferedAuth(connection);

    const ip = connection.remoteAddress || 'unknown';
    const count = (this.perIp.get(ip) ?? 0) + 1;
    this.perIp.set(ip, count);
    const timers = armDeadlines(connection, this.guard);
    closeAfterHalfClose(connection);
    socket.once('close', () => {
      timers.clear();
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left > 0) this.perIp.set(ip, left);
      else this.perIp.delete(ip);
    });

    connection._setListeners(() => {
      if (this.options.maxClients && this.connections.size > this.options.maxClients) {
        return connection.send(421, `${this.options.name ?? ''} Too many connected clients, try again in a moment`.trim(), false);
      }
      if (count > this.guard.maxConnectionsPerIp) {
        const err = SmtpError.tooManyConnections();
        return connection.send(421, err.replyText, false);
      }
      if (this.guard.greetingDelayMs > 0) {
        setTimeout(() => connection.connectionReady(), this.guard.greetingDelayMs).unref();
      } else {
        connection.connectionReady();
      }
    });
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

/**
 * Runs `fn` on the connection's parser and on every parser it makes later: STARTTLS retires the
 * parser and makes a new one for the TLS session (so that plaintext pipelined behind STARTTLS is
 * never run), and the guards must hold inside TLS too.
 */
function onEveryParser(connection: SMTPConnection, fn: (parser: SMTPStream) => void): void {
  if (connection._parser) fn(connection._parser);
  const createParser = connection._createParser.bind(connection);
  connection._createParser = () => {
    const parser = createParser();
    fn(parser);
    return parser;
  };
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
 * STARTTLS would make it available, else 503; the library would say "500 command not
 * recognized" and count it as junk.
 */
function answerUnofferedAuth(connection: SMTPConnection): void {
  const onCommand = connection._onCommand.bind(connection);
  connection._onCommand = (command, callback) => {
    const verb = command.subarray(0, 5).toString('latin1').toUpperCase();
    if (connection._ready && !connection._upgrading && !connection._nextHandler && /^AUTH(\s|$)/.test(verb) && connection._isDisabled('AUTH')) {
      const err = !connection.secure && connection._isSupported('STARTTLS') ? SmtpError.encryptionRequired() : SmtpError.authNotOffered();
      connection.send(err.responseCode, err.replyText);
      return connection._whenWritable(callback ?? (() => undefined));
    }
    return onCommand(command, callback);
  };
}

/**
 * Watches the bytes the connection's parsers receive (plaintext and after STARTTLS) and closes
 * the connection with 421 when a deadline passes.
 */
function armDeadlines(connection: SMTPConnection, guard: GuardOptions): { clear(): void } {
  let lineTimer: NodeJS.Timeout | undefined;
  let dataTimer: NodeJS.Timeout | undefined;
  const expire = (what: string) => () => {
    if (connection._closed || connection._closing) return;
    connection.send(421, SmtpError.timeout(what).replyText, false);
  };
  const sessionTimer = setTimeout(expire('Session'), guard.sessionTimeoutMs);
  sessionTimer.unref();

  const watch = (parser: SMTPStream): void => {
    const write = parser.write.bind(parser) as (...args: unknown[]) => boolean;
    parser.write = ((chunk: Buffer, ...rest: unknown[]) => {
      if (parser._dataMode) {
        clearTimeout(lineTimer);
        lineTimer = undefined;
        if (!dataTimer) {
          dataTimer = setTimeout(expire('Data transfer'), guard.dataTimeoutMs);
          dataTimer.unref();
          parser._dataStream?.once('end', () => {
            clearTimeout(dataTimer);
            dataTimer = undefined;
          });
        }
      } else if (Buffer.isBuffer(chunk)) {
        if (chunk[chunk.length - 1] === 0x0a) {
          clearTimeout(lineTimer);
          lineTimer = undefined;
        } else if (!lineTimer || chunk.includes(0x0a)) {
          // a new partial line starts its own deadline
          clearTimeout(lineTimer);
          lineTimer = setTimeout(expire('Command'), guard.commandTimeoutMs);
          lineTimer.unref();
        }
      }
      return write(chunk, ...rest);
    }) as typeof parser.write;
  };

  onEveryParser(connection, watch);
  return {
    clear() {
      clearTimeout(sessionTimer);
      clearTimeout(lineTimer);
      clearTimeout(dataTimer);
    },
  };
}
