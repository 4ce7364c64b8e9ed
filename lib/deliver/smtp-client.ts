/**
 * SMTP sessions to destination hosts, on nodemailer's SMTPConnection: connect (from the zone's
 * local address, with its HELO name), STARTTLS by policy, then one transaction after another:
 * MAIL/RCPT for every recipient, DATA. A session that finished a transaction cleanly goes back to
 * the pool (lib/deliver/session-pool.ts) for the next message to the same host.
 *
 * Errors are nodemailer's structured errors (code, responseCode, response, command) plus
 * `connected` (did we reach the greeting and EHLO?), `dataSent` (had the whole message been
 * handed over?) and `tls`.
 */
import net from 'node:net';
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { installFastDataStream } from './dot-stuff.js';

installFastDataStream();

export type TlsPolicy = 'none' | 'may' | 'encrypt' | 'verify';

export interface SessionOptions {
  address: string;
  port: number;
  /** the MX name, for SNI and certificate checks */
  hostname: string;
  localAddress?: string;
  heloName: string;
  tls: TlsPolicy;
  connectTimeoutMs: number;
  greetingTimeoutMs: number;
  socketTimeoutMs: number;
}

export interface TransactionResult {
  accepted: string[];
  rejected: { recipient: string; responseCode?: number; response: string }[];
  response: string;
  tls: boolean;
}

export interface TransactionError extends Error {
  code?: string;
  /** the system or TLS code under nodemailer's (e.g. DEPTH_ZERO_SELF_SIGNED_CERT under ESOCKET) */
  originalCode?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  connected: boolean;
  dataSent: boolean;
  tls: boolean;
  /** the session was a reused one that turned out to be dead before MAIL FROM was answered */
  staleSession?: boolean;
}

type NmError = Error & { code?: string; responseCode?: number; response?: string; command?: string };

export class SmtpSession {
  readonly key: string;
  private readonly conn: SMTPConnection;
  private failCurrent: ((err: NmError) => void) | undefined;
  dead = false;
  messages = 0;
  lastUsedMs = Date.now();
  /** throttling: earliest time the next message may go on this session */
  notBeforeMs = 0;

  private constructor(readonly opts: SessionOptions) {
    this.key = sessionKey(opts);
    // SNI carries host names only (RFC 6066); a route to an address literal sends none (Node
    // warns, and will ignore it). The certificate is still checked against the address.
    const servername = net.isIP(opts.hostname) ? undefined : opts.hostname;
    this.conn = new SMTPConnection({
      host: opts.address,
      port: opts.port,
      servername,
      name: opts.heloName,
      localAddress: opts.localAddress,
      ignoreTLS: opts.tls === 'none',
      requireTLS: opts.tls === 'encrypt' || opts.tls === 'verify',
      tls: { rejectUnauthorized: opts.tls === 'verify', ...(servername ? { servername } : {}), minVersion: 'TLSv1.2' },
      connectionTimeout: opts.connectTimeoutMs,
      greetingTimeout: opts.greetingTimeoutMs,
      socketTimeout: opts.socketTimeoutMs,
      allowInternalNetworkInterfaces: true,
      logger: false,
    });
    const die = (err: NmError) => {
      this.dead = true;
      const fail = this.failCurrent;
      this.failCurrent = undefined;
      fail?.(err);
    };
    this.conn.on('error', die);
    // nodemailer emits 'end' from close() just BEFORE it hands the pending send its own error
    // (after a 421 it closes first, then fails the send with the server's reply). Waiting one
    // turn lets that error, with its responseCode and reply text, win over this generic one;
    // otherwise "421 4.3.2 shutting down" was recorded as "Connection closed unexpectedly" (F4c).
    this.conn.on('end', () => setImmediate(() => die(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }))));
  }

  get secure(): boolean {
    return this.conn.secure;
  }

  /** Connects and greets; rejects with a TransactionError whose `connected` is false. */
  static open(opts: SessionOptions): Promise<SmtpSession> {
    const session = new SmtpSession(opts);
    return new Promise((resolve, reject) => {
      session.failCurrent = (err) => {
        session.close();
        reject(Object.assign(err, { connected: false, dataSent: false, tls: session.conn.secure }) as TransactionError);
      };
      session.conn.connect(() => {
        session.failCurrent = undefined;
        resolve(session);
      });
    });
  }

  /** One mail transaction. On any error the session is closed and not reused. */
  send(envelope: { from: string; to: string[]; size: number }, message: Readable, dataSent: () => boolean, reused: boolean): Promise<TransactionResult> {
    this.messages++;
    this.lastUsedMs = Date.now();
    return new Promise<TransactionResult>((resolve, reject) => {
      let settled = false;
      const fail = (err: NmError) => {
        if (settled) return;
        settled = true;
        this.dead = true;
        this.close();
        message.destroy();
        // a pooled session the server had dropped: nothing of this message was said yet
        const stale = reused && !err.responseCode && !dataSent() && (err.code === 'ECONNECTION' || err.code === 'ESOCKET' || err.code === 'ETIMEDOUT');
        reject(Object.assign(err, { connected: true, dataSent: dataSent(), tls: this.conn.secure, staleSession: stale }) as TransactionError);
      };
      if (this.dead) return fail(Object.assign(new Error('Connection closed unexpectedly'), { code: 'ECONNECTION' }));
      this.failCurrent = fail;
      this.conn.send({ from: envelope.from, to: envelope.to, size: envelope.size }, message, (err, info) => {
        if (err) return fail(err as NmError);
        if (settled) return;
        settled = true;
        this.failCurrent = undefined;
        const errors = info.rejectedErrors ?? [];
        const rejected = info.rejected.map((recipient, i) => {
          const e = errors[i] as NmError | undefined;
          return { recipient, responseCode: e?.responseCode, response: e?.response ?? e?.message ?? 'rejected' };
        });
        resolve({ accepted: info.accepted, rejected, response: info.response, tls: this.conn.secure });
      });
    });
  }

  quit(): void {
    this.dead = true;
    this.failCurrent = undefined;
    this.conn.quit();
  }

  close(): void {
    this.dead = true;
    this.failCurrent = undefined;
    this.conn.close();
  }
}

export function sessionKey(o: SessionOptions): string {
  return [o.address, o.port, o.localAddress ?? '', o.heloName, o.tls, o.hostname].join('|');
}
