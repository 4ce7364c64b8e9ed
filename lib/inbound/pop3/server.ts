/**
 * The POP3 door of the inbox: a listener on node:net (STLS upgrades with node:tls) that serves
 * private inboxes to mail clients and POP3 test libraries, the API key of the inbox as password
 * (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS). Our own code: no npm POP3 server library is
 * maintained enough to depend on, and the protocol is small.
 *
 * Its place: beside the inbound SMTP receiver, started and stopped by Inbound; it reads the inbox
 * through Inbox's named functions (list, raw, removeFrom, privates) and nothing else.
 *
 * Invariants:
 * - connections are capped in all (maxClients) and per client (maxConnectionsPerIp, an IPv6
 *   client by its /64); over a cap the client gets one "-ERR [SYS/TEMP]" line and the close;
 * - failed logins are counted per client address across connections (AuthFailures, as the SMTP
 *   doors count AUTH failures), in a counter of this door's own;
 * - stop() ends every session within STOP_GRACE_MS and resolves only when none is left, so the
 *   inbox store is never closed under a session's read or its QUIT's removals.
 */
import net, { type AddressInfo, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { AuthFailures } from '../../accept/auth-failures.js';
import { clientKey } from '../../config/net.js';
import { Pop3Connection } from './connection.js';
import { Pop3Error } from './errors.js';
import { Pop3Session, type SessionDeps } from './session.js';

/** RFC 2449 allows 255 octets; an address may be up to 320 characters, so a little more. */
const MAX_LINE_BYTES = 512;
/** How long stop() lets a session finish the command it is in before its socket is destroyed. */
const STOP_GRACE_MS = 2000;

export interface Pop3ServerDeps extends Omit<SessionDeps, 'failures' | 'tls'> {
  /** PEM files for STLS (the POP3 section's, or the receiver's); unset: no STLS */
  tls: { key: string; cert: string } | undefined;
}

export class Pop3Server {
  private readonly server: net.Server;
  /** every open connection, refused ones too (they close within a few seconds) */
  private readonly connections = new Set<Pop3Connection>();
  /** the sessions and their run() */
  private readonly sessions = new Map<Pop3Session, Promise<void>>();
  private readonly perClient = new Map<string, number>();
  private readonly failures: AuthFailures;
  private readonly tls: SecureContext | undefined;

  constructor(private readonly deps: Pop3ServerDeps) {
    const { config } = deps;
    this.failures = new AuthFailures(config.maxLoginFailures, config.loginFailureWindow);
    this.tls = deps.tls ? createSecureContext({ key: readFileSync(deps.tls.key), cert: readFileSync(deps.tls.cert) }) : undefined;
    // a client may send its last commands and close its side; it still gets the replies
    this.server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server.on('error', (err) => deps.logger.warn({ err, listener: 'pop3' }, `POP3 listener: ${err.message}`));
  }

  /** Listens; resolves with the address, or rejects with the listen error (a port in use). */
  start(): Promise<AddressInfo> {
    const { host, port } = this.deps.config;
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Open connections from one client (an address, or an IPv6 /64). */
  connectionsFrom(ip: string): number {
    return this.perClient.get(clientKey(ip)) ?? 0;
  }

  private accept(socket: Socket): void {
    const { config } = this.deps;
    const conn = new Pop3Connection(socket, {
      socketTimeoutMs: config.socketTimeout,
      commandTimeoutMs: config.commandTimeout,
      sessionTimeoutMs: config.sessionTimeout,
      maxLineBytes: MAX_LINE_BYTES,
    });
    this.connections.add(conn);
    const key = clientKey(socket.remoteAddress);
    const count = (this.perClient.get(key) ?? 0) + 1;
    this.perClient.set(key, count);
    void conn.done.then(() => {
      this.connections.delete(conn);
      const left = (this.perClient.get(key) ?? 1) - 1;
      if (left > 0) this.perClient.set(key, left);
      else this.perClient.delete(key);
    });
    if (!this.server.listening) return conn.finish(Pop3Error.shuttingDown());
    if (this.sessions.size >= config.maxClients) return conn.finish(Pop3Error.serverFull());
    if (count > config.maxConnectionsPerIp) return conn.finish(Pop3Error.tooManyConnections());
    const session = new Pop3Session(conn, { ...this.deps, failures: this.failures, tls: this.tls });
    const running = session
      .run()
      .catch((err: unknown) => {
        this.deps.logger.warn({ err, ip: conn.remoteAddress }, `POP3 session failed: ${(err as Error)?.message ?? err}`);
        conn.destroy();
      })
      .finally(() => this.sessions.delete(session));
    this.sessions.set(session, running);
  }

  /** Stops listening and ends every session; resolves when every session and socket is gone. */
  async stop(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions.keys()) session.shutdown();
    const timer = setTimeout(() => {
      for (const conn of this.connections) conn.destroy();
    }, STOP_GRACE_MS);
    // a session's run() ends after its last store read or removal: only then may the store close
    await Promise.all([...this.sessions.values(), ...[...this.connections].map((c) => c.done)]);
    clearTimeout(timer);
    await closed;
  }
}
