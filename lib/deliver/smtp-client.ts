/**
 * SMTP sessions to destination hosts, on nodemailer's SMTPConnection: connect (from the zone's
 * local address, with its HELO name), STARTTLS by policy (for DANE, the certificate is checked
 * against the TLSA records after STARTTLS, before MAIL FROM), then one transaction after another:
 * MAIL/RCPT for every recipient, DATA. A session that finished a transaction cleanly goes back to
 * the pool (lib/deliver/session-pool.ts) for the next message to the same host.
 *
 * Every failure rejects with a DeliveryError (lib/errors/delivery-error.ts): nodemailer's
 * structured errors are turned into one here, at the edge of the library, with the SMTP phase,
 * `connected` (did we get past greeting, EHLO and STARTTLS?), `dataSent` (had the whole message
 * been handed over?) and `tls`. Nothing past this file reads nodemailer's error fields.
 */
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { TLSSocket, PeerCertificate, DetailedPeerCertificate } from 'node:tls';
import type { Readable } from 'node:stream';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { checkDane, type TlsaRecord } from './tls/dane.js';
import { DeliveryError, type SmtpPhase } from '../errors/delivery-error.js';

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
  /** DANE: after STARTTLS the peer's chain must match one of these records (tls is "encrypt") */
  dane?: { records: readonly TlsaRecord[]; names: readonly string[] };
  /** trusted CAs for certificate checks when the operator added some (else node's own) */
  ca?: readonly string[];
}

/** How the peer's certificate fared under WebPKI rules, whatever the policy asked for. */
export interface PeerCheck {
  authorized: boolean;
  /** the reason it is not (node's code, e.g. DEPTH_ZERO_SELF_SIGNED_CERT or ERR_TLS_CERT_ALTNAME_INVALID) */
  error?: string;
}

export interface TransactionResult {
  accepted: string[];
  rejected: { recipient: string; responseCode?: number; response: string }[];
  response: string;
  tls: boolean;
  /** the session's TLS certificate check (undefined without TLS) */
  peer?: PeerCheck;
}

/** What nodemailer rejects with (its _formatError), or one of our own DeliveryErrors. */
type NmError = Error & { code?: string; originalCode?: string; responseCode?: number; response?: string; command?: string; rejectedErrors?: NmError[]; recipient?: string };

export class SmtpSession {
  readonly key: string;
  private readonly conn: SMTPConnection;
  private failCurrent: ((err: NmError | DeliveryError) => void) | undefined;
  dead = false;
  messages = 0;
  lastUsedMs = Date.now();
  /** throttling: earliest time the next message may go on this session */
  notBeforeMs = 0;
  /** set once STARTTLS is done: how the certificate fared under WebPKI rules */
  peer: PeerCheck | undefined;

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
      tls: { rejectUnauthorized: opts.tls === 'verify', ...(servername ? { servername } : {}), ...(opts.ca ? { ca: [...opts.ca] } : {}), minVersion: 'TLSv1.2' },
      connectionTimeout: opts.connectTimeoutMs,
      greetingTimeout: opts.greetingTimeoutMs,
      socketTimeout: opts.socketTimeoutMs,
      allowInternalNetworkInterfaces: true,
      logger: false,
    });
    const die = (err: NmError | DeliveryError) => {
      this.dead = true;
      const fail = this.failCurrent;
      this.failCurrent = undefined;
      fail?.(err);
    };
    this.conn.on('error', die);
    // nodemailer emits 'end' from close() just BEFORE it hands the pending send its own error
    // (after a 421 it closes first, then fails the send with the server's reply). Waiting one
    // turn lets that error, with its responseCode and reply text, win over this generic one, so a
    // "421 4.3.2 shutting down" is recorded as the server said it (fault F4c).
    this.conn.on('end', () => setImmediate(() => die(new DeliveryError('Connection closed unexpectedly', { code: 'ECONNECTION' }))));
  }

  get secure(): boolean {
    return this.conn.secure;
  }

  /** Connects and greets; rejects with a DeliveryError whose `connected` is false. An abort
   * of `signal` (the attempt was cancelled) closes the connection and rejects at once. */
  static open(opts: SessionOptions, signal?: AbortSignal): Promise<SmtpSession> {
    const session = new SmtpSession(opts);
    return session.watch(signal, () => new Promise<SmtpSession>((resolve, reject) => {
      session.failCurrent = (err) => {
        session.close();
        reject(deliveryError(err, { connected: false, dataSent: false, tls: session.conn.secure }));
      };
      session.conn.connect(() => {
        session.failCurrent = undefined;
        // after STARTTLS and the second EHLO, before MAIL FROM: nothing of the message has gone yet
        const refused = session.checkPeer();
        if (!refused) return resolve(session);
        session.close();
        reject(refused.with({ connected: true, dataSent: false, tls: session.conn.secure }));
      });
    }));
  }

  /** Runs `op`; if `signal` aborts meanwhile, the operation fails with the reason and the
   * connection is closed (a cancelled attempt leaves nothing open behind it). */
  private watch<T>(signal: AbortSignal | undefined, op: () => Promise<T>): Promise<T> {
    if (!signal) return op();
    const onAbort = () => {
      const fail = this.failCurrent;
      this.failCurrent = undefined;
      const reason = signal.reason instanceof Error ? signal.reason.message : 'cancelled';
      fail?.(new DeliveryError(`delivery attempt cancelled: ${reason}`, { code: 'ETIMEDOUT' }));
      this.close();
    };
    const running = op();
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return running.finally(() => signal.removeEventListener('abort', onAbort));
  }

  /**
   * Records how the certificate fared, and applies DANE. nodemailer calls checkServerIdentity only
   * for a chain that verifies, so a DANE-EE server with a self-signed certificate is reached with
   * rejectUnauthorized off and checked here. An error (ETLS) when the session must not be used.
   */
  private checkPeer(): DeliveryError | undefined {
    const socket = this.conn._socket;
    const tlsSocket = this.conn.secure && socket && 'getPeerCertificate' in socket ? (socket as TLSSocket) : undefined;
    if (tlsSocket) this.peer = { authorized: tlsSocket.authorized, ...(tlsSocket.authorizationError ? { error: String(tlsSocket.authorizationError) } : {}) };
    const required = this.opts.tls === 'encrypt' || this.opts.tls === 'verify' || this.opts.dane;
    if (required && !tlsSocket) return DeliveryError.tlsRefused(`${this.opts.hostname}: TLS is required and the session is not encrypted`);
    if (!this.opts.dane || !tlsSocket) return undefined;
    const verdict = checkDane(this.opts.dane.records, peerChain(tlsSocket), this.opts.dane.names);
    if (verdict.ok) return undefined;
    return DeliveryError.tlsRefused(`DANE: ${this.opts.hostname}: ${verdict.reason}`, 'DANE_MISMATCH');
  }

  /** One mail transaction. On any error (or an abort of `signal`) the session is closed and not reused. */
  send(envelope: { from: string; to: string[]; size: number }, message: Readable, dataSent: () => boolean, reused: boolean, signal?: AbortSignal): Promise<TransactionResult> {
    this.messages++;
    this.lastUsedMs = Date.now();
    return this.watch(signal, () => new Promise<TransactionResult>((resolve, reject) => {
      let settled = false;
      const fail = (err: NmError | DeliveryError) => {
        if (settled) return;
        settled = true;
        this.dead = true;
        this.close();
        message.destroy();
        // a pooled session the server had dropped: nothing of this message was said yet
        const stale = reused && !err.responseCode && !dataSent() && (err.code === 'ECONNECTION' || err.code === 'ESOCKET' || err.code === 'ETIMEDOUT');
        reject(deliveryError(err, { connected: true, dataSent: dataSent(), tls: this.conn.secure, staleSession: stale }));
      };
      if (this.dead) return fail(new DeliveryError('Connection closed unexpectedly', { code: 'ECONNECTION' }));
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
        resolve({ accepted: info.accepted, rejected, response: info.response, tls: this.conn.secure, ...(this.peer ? { peer: this.peer } : {}) });
      });
    }));
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

type SessionState = { connected: boolean; dataSent: boolean; tls: boolean; staleSession?: boolean };

/** A failure as a DeliveryError: ours get the session's state, nodemailer's are read once here. */
function deliveryError(err: NmError | DeliveryError, state: SessionState): DeliveryError {
  if (err instanceof DeliveryError) return err.with(state);
  const code = err.code ?? 'EUNKNOWN';
  const rejected = code === 'EENVELOPE' ? (err.rejectedErrors ?? []).flatMap((e) => (e.recipient ? [{ recipient: e.recipient, responseCode: e.responseCode, response: e.response ?? e.message }] : [])) : [];
  return new DeliveryError(
    err.message,
    {
      code,
      phase: phaseOf(code, err.command, state.dataSent),
      ...(err.originalCode ? { originalCode: err.originalCode } : {}),
      ...(err.responseCode ? { responseCode: err.responseCode } : {}),
      ...(err.response ? { response: err.response } : {}),
      ...(rejected.length ? { rejected } : {}),
      ...state,
    },
    { cause: err },
  );
}

/**
 * The step that failed, from the command nodemailer names on its error ('MAIL FROM', 'RCPT TO',
 * 'CONN', 'API' for a call it refused itself, …) and from what we know: a failure with the whole
 * message handed over and no command of its own is the wait for the reply to the final dot.
 */
export function phaseOf(code: string, command: string | undefined, dataSent: boolean): SmtpPhase {
  const cmd = (command ?? '').toUpperCase();
  if (code === 'ETLS' || cmd.startsWith('STARTTLS')) return 'STARTTLS';
  if (cmd.startsWith('EHLO') || cmd.startsWith('HELO') || cmd.startsWith('LHLO')) return 'EHLO';
  if (cmd.startsWith('MAIL')) return 'MAIL';
  if (cmd.startsWith('RCPT')) return 'RCPT';
  if (cmd.startsWith('DATA')) return 'DATA';
  if (dataSent) return 'DOT';
  if (code === 'EENVELOPE') return 'RCPT';
  if (code === 'EMESSAGE' || code === 'EPROTOCOL') return 'DATA';
  if (cmd.startsWith('AUTH')) return 'AUTH';
  if (cmd.startsWith('RSET')) return 'RSET';
  // no command in flight, or the connection itself: connect, greeting, a drop between commands
  if (!cmd || cmd === 'CONN') return 'CONN';
  return 'CLIENT';
}

/**
 * Sessions are shared only between deliveries with the same destination and the same checks: a
 * session opened under a weaker policy (no DANE, other TLSA records) is never reused for a
 * stricter one.
 */
export function sessionKey(o: SessionOptions): string {
  const dane = o.dane ? `dane:${createHash('sha256').update(JSON.stringify([o.dane.records.map((r) => [r.usage, r.selector, r.matching, r.data.toString('hex')]), o.dane.names])).digest('hex').slice(0, 32)}` : '';
  return [o.address, o.port, o.localAddress ?? '', o.heloName, o.tls, o.hostname, dane].join('|');
}

/** The presented chain, leaf first, DER (node links each certificate to its issuer). */
function peerChain(socket: TLSSocket): Buffer[] {
  const out: Buffer[] = [];
  const seen = new Set<string>();
  let cert: PeerCertificate | DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert && cert.raw && out.length < 10 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    out.push(cert.raw);
    cert = (cert as DetailedPeerCertificate).issuerCertificate;
  }
  return out;
}
