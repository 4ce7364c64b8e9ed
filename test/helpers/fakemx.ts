/**
 * fakemx: a scriptable destination SMTP server for delivery tests.
 * One listener on 127.0.0.1, port 0; the mode can change at run time with setMode().
 *
 * Modes served by smtp-server (the library real peers use):
 *   accept                       250 to everything
 *   tempfail / permfail at MAIL, RCPT, DATA or DOT, with a reply ('450 4.2.0 greylisted')
 *   dropAfterDot                 read the whole message, then destroy the socket, no reply
 *                                (the RFC 1047 window: the sender cannot know if it was taken)
 *   delayDot ms                  wait before the reply to the final dot
 * Modes served by a raw socket session (fakemx-raw.ts), since smtp-server always greets and
 * always answers:
 *   silent                       accept TCP, never send the 220 greeting
 *   stallAt EHLO|MAIL|RCPT|DATA|DOT   answer until that command, then never answer again
 *   starttlsInject               answer STARTTLS with "220 go\r\n250 injected\r\n" in one write,
 *                                then do the TLS handshake (client side of F13)
 * The mode is read when a connection arrives to pick the server; on an smtp-server connection
 * each command reads the mode current at that moment, so a test can switch modes mid-run.
 * `firstAttemptPerId` makes a DOT-level failure (or dropAfterDot) hit only the first copy of
 * each X-Test-Id; later copies are accepted (F4b: "drop the first attempt, then accept").
 *
 * STARTTLS is offered by default with a self-signed certificate for mx.test (test-cert.ts), or
 * with the key and certificate chain given as tlsKey/tlsCert (DANE and MTA-STS tests).
 *
 * Every transaction (from MAIL on) is recorded: envelope, the DATA bytes as received (after
 * dot-unstuffing, CR and LF exactly as sent), X-Test-Id, timestamps, TLS, HELO name, addresses,
 * what we answered. A "copy" is a transaction whose whole message reached us and was not
 * refused (accepted, dropped after the dot, or stalled at the dot): a copy the real MX may have
 * delivered, which is what duplicate counting needs.
 */
import net from 'node:net';
import tls from 'node:tls';
import { EventEmitter } from 'node:events';
import { SMTPServer, type SMTPServerSession, type SMTPServerOptions } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { testCert } from './test-cert.js';
import { rawSession } from './fakemx-raw.js';
import {
  DEFAULT_PERMFAIL_REPLY,
  DEFAULT_TEMPFAIL_REPLY,
  isCopy,
  normalizeMode,
  parseReply,
  replyError,
  StreamedData,
  testIdOf,
  type FailStage,
  type FakeMxConnection,
  type FakeMxMode,
  type FakeMxOptions,
  type FakeMxRecorder,
  type FakeMxTransaction,
  type Outcome,
  type Reply,
  type SimpleMode,
} from './fakemx-types.js';

export * from './fakemx-types.js';


let connectionSeq = 0;

export class FakeMx extends EventEmitter implements FakeMxRecorder {
  readonly transactions: FakeMxTransaction[] = [];
  readonly connections: FakeMxConnection[] = [];
  private modeNow: FakeMxMode;
  private readonly rcptReplies = new Map<string, string>();
  private readonly recipientReply: ((address: string) => string | undefined) | undefined;
  private readonly seenIds = new Set<string>();
  private readonly sockets = new Set<net.Socket>();
  private readonly socketById = new Map<string, net.Socket>();
  private readonly current = new Map<string, FakeMxTransaction>();
  private readonly connById = new Map<string, FakeMxConnection>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly smtp: SMTPServer;
  private readonly front: net.Server;
  readonly name: string;
  readonly secureContext: tls.SecureContext;
  readonly cert: Buffer;
  private readonly keepData: boolean;
  port = 0;
  host: string;

  private constructor(opts: FakeMxOptions, key: Buffer, cert: Buffer) {
    super();
    this.modeNow = normalizeMode(opts.mode ?? 'accept');
    this.name = opts.name ?? 'mx.test';
    this.host = opts.host ?? '127.0.0.1';
    this.keepData = opts.keepData ?? true;
    this.recipientReply = opts.recipientReply;
    this.cert = cert;
    this.secureContext = tls.createSecureContext({ key, cert });
    const offerTls = opts.tls ?? true;
    const options: SMTPServerOptions = {
      name: this.name,
      banner: 'fakemx ESMTP',
      logger: false,
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: offerTls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      hideSTARTTLS: !offerTls,
      hideENHANCEDSTATUSCODES: false,
      key,
      cert,
      size: opts.maxSizeBytes,
      rejectOversized: true,
      onMailFrom: (address, session, cb) => this.onMail(address.address, session, cb),
      onRcptTo: (address, session, cb) => this.onRcpt(address.address, session, cb),
      onData: (stream, session, cb) => this.onDataStream(stream, session, cb),
      onClose: (session) => this.onSmtpClose(session),
      onSecure: (_socket, session, cb) => {
        const conn = this.connById.get(session.id);
        if (conn) conn.tls = true;
        cb();
      },
    };
    this.smtp = new QuickSmtpServer(options, (connection) => this.wrapConnection(connection));
    this.smtp.on('error', () => undefined); // client misbehaviour is not a test failure here
    this.front = net.createServer((socket) => this.onSocket(socket));
  }

  static async start(opts: FakeMxOptions = {}): Promise<FakeMx> {
    const host = opts.host ?? '127.0.0.1';
    if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1') throw new Error(`fakemx listens on loopback only, not ${host}`);
    const { key, cert } = opts.tlsKey && opts.tlsCert ? { key: opts.tlsKey, cert: opts.tlsCert } : testCert();
    const mx = new FakeMx(opts, key, cert);
    await new Promise<void>((resolve, reject) => {
      mx.front.once('error', reject);
      mx.front.listen(opts.port ?? 0, host, () => resolve());
    });
    mx.port = (mx.front.address() as net.AddressInfo).port;
    return mx;
  }

  /** For a static route or a resolver port map. */
  get route(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  get mode(): FakeMxMode {
    return this.modeNow;
  }

  setMode(mode: FakeMxMode | SimpleMode): void {
    this.modeNow = normalizeMode(mode);
  }

  /** A fixed RCPT reply for one address (any smtp-server mode); undefined removes it. */
  setRecipientReply(address: string, reply: string | undefined): void {
    if (reply === undefined) this.rcptReplies.delete(address.toLowerCase());
    else this.rcptReplies.set(address.toLowerCase(), parseReply(reply).line);
  }

  /** Transactions whose DATA was fully received (whatever we answered). */
  get messages(): FakeMxTransaction[] {
    return this.transactions.filter((t) => t.data !== undefined || t.dataEndAt !== undefined);
  }

  /** Copies per X-Test-Id: messages received whole and not refused (see the header). */
  copiesById(): Map<string, number> {
    const out = new Map<string, number>();
    for (const t of this.transactions) {
      if (!isCopy(t) || t.testId === undefined) continue;
      out.set(t.testId, (out.get(t.testId) ?? 0) + 1);
    }
    return out;
  }

  /** Copies received so far (see the header). */
  get copies(): number {
    return this.transactions.filter(isCopy).length;
  }

  /** Resolves when at least n copies have arrived; rejects after timeoutMs. */
  waitFor(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.copies >= n, timeoutMs, () => `fakemx: ${this.copies} of ${n} messages after ${timeoutMs} ms`);
  }

  /** Resolves when at least n TCP connections have arrived. */
  waitForConnections(n: number, timeoutMs = 10_000): Promise<void> {
    return this.waitUntil(() => this.connections.length >= n, timeoutMs, () => `fakemx: ${this.connections.length} of ${n} connections after ${timeoutMs} ms`);
  }

  /** Resolves when `check()` holds, re-checked on every recorded change; rejects after timeoutMs. */
  waitUntil(check: () => boolean, timeoutMs: number, describe: () => string = () => `fakemx: condition not met after ${timeoutMs} ms`): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onChange = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.off('change', onChange);
        resolve();
      };
      const timer = setTimeout(() => {
        this.off('change', onChange);
        reject(new Error(describe()));
      }, timeoutMs);
      this.on('change', onChange);
    });
  }

  /** Forgets what was recorded (not the mode). */
  clear(): void {
    this.transactions.length = 0;
    this.connections.length = 0;
    this.seenIds.clear();
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.front.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.smtp.close(() => undefined);
    await closed;
  }

  // --- connections -------------------------------------------------------------------------

  private onSocket(socket: net.Socket): void {
    socket.on('error', () => undefined);
    this.sockets.add(socket);
    const mode = this.modeNow;
    const raw = mode.kind === 'silent' || mode.kind === 'stallAt' || mode.kind === 'starttlsInject';
    const record: FakeMxConnection = {
      id: `c${++connectionSeq}`,
      server: raw ? 'raw' : 'smtp-server',
      mode: mode.kind,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      connectedAt: Date.now(),
      tls: false,
      commands: [],
    };
    this.connections.push(record);
    socket.once('close', () => {
      this.sockets.delete(socket);
      record.closedAt = Date.now();
      this.changed();
    });
    this.changed();
    if (raw) {
      rawSession(socket, mode, record, this);
    } else {
      this.pendingRecord = { record, socket };
      this.smtp.connect(socket);
    }
  }

  /** Handed from onSocket to wrapConnection (synchronously, inside smtp.connect). */
  private pendingRecord: { record: FakeMxConnection; socket: net.Socket } | undefined;

  private wrapConnection(connection: SMTPConnection): void {
    const pending = this.pendingRecord;
    this.pendingRecord = undefined;
    if (!pending) return;
    pending.record.id = connection.id;
    this.connById.set(connection.id, pending.record);
    this.socketById.set(connection.id, pending.socket);
    pending.socket.once('close', () => {
      this.connById.delete(connection.id);
      this.socketById.delete(connection.id);
      const open = this.current.get(connection.id);
      if (open && open.outcome === 'open') open.outcome = 'aborted';
      this.current.delete(connection.id);
    });
    // failures at the DATA command itself: smtp-server has no hook before its 354
    const handleData = connection.handler_DATA.bind(connection);
    connection.handler_DATA = (command, callback) => {
      const fail = this.failure('DATA');
      const t = this.current.get(connection.id);
      if (fail && connection.session.envelope.rcptTo.length) {
        if (t) this.finish(t, 'rejected', fail.line);
        connection.send(fail.code, fail.text);
        return callback();
      }
      return handleData(command, callback);
    };
  }

  // --- smtp-server hooks -------------------------------------------------------------------

  private onMail(from: string, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const conn = this.connById.get(session.id);
    const socket = this.socketById.get(session.id);
    if (conn) conn.tls = session.secure;
    const previous = this.current.get(session.id);
    if (previous && previous.outcome === 'open') previous.outcome = 'aborted'; // RSET or a new MAIL
    const t = conn && socket ? this.startTransaction(conn, socket, session.hostNameAppearsAs || '', session.secure, from) : undefined;
    if (t) this.current.set(session.id, t);
    const fail = this.failure('MAIL');
    if (fail) {
      if (t) this.finish(t, 'rejected', fail.line);
      return cb(replyError(fail));
    }
    cb();
  }

  private onRcpt(address: string, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const t = this.current.get(session.id);
    const fixed = this.rcptReplies.get(address.toLowerCase()) ?? this.recipientReply?.(address);
    const fail = fixed ? parseReply(fixed) : this.failure('RCPT');
    if (fail && fail.code >= 400) {
      t?.refused.push({ address, reply: fail.line });
      if (t) t.reply = fail.line;
      this.changed();
      return cb(replyError(fail));
    }
    t?.to.push(address);
    this.changed();
    cb();
  }

  private onDataStream(stream: NodeJS.ReadableStream & { sizeExceeded?: boolean }, session: SMTPServerSession, cb: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    const streamed = this.keepData ? undefined : new StreamedData();
    stream.on('data', (c: Buffer) => (streamed ? streamed.add(c) : chunks.push(c)));
    stream.on('end', () => {
      const t = this.current.get(session.id);
      if (t && streamed) this.finishStreamed(t, streamed);
      else if (t) this.finishData(t, Buffer.concat(chunks));
      if (stream.sizeExceeded) {
        if (t) this.finish(t, 'rejected', '552 message exceeds fixed maximum message size');
        return cb(null); // smtp-server answers 552 itself
      }
      const mode = this.modeNow;
      const firstCopy = t?.testId === undefined || !this.seenIds.has(t.testId);
      if (t?.testId !== undefined) this.seenIds.add(t.testId);
      const applies = (m: { firstAttemptPerId?: boolean }) => !m.firstAttemptPerId || firstCopy;

      if (mode.kind === 'dropAfterDot' && applies(mode)) {
        if (t) this.finish(t, 'dropped', undefined);
        this.socketById.get(session.id)?.destroy();
        return;
      }
      const fail = (mode.kind === 'tempfail' || mode.kind === 'permfail') && mode.at === 'DOT' && applies(mode) ? this.failure('DOT') : undefined;
      if (fail) {
        if (t) this.finish(t, 'rejected', fail.line);
        return cb(replyError(fail));
      }
      const accept = () => {
        const text = `2.0.0 Ok: queued as fakemx-${this.transactions.length}`;
        if (t) this.finish(t, 'accepted', `250 ${text}`);
        cb(null, text);
      };
      if (mode.kind === 'delayDot' && mode.ms > 0) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          accept();
        }, mode.ms);
        this.timers.add(timer);
      } else {
        accept();
      }
    });
  }

  private onSmtpClose(session: SMTPServerSession): void {
    const t = this.current.get(session.id);
    if (t && t.outcome === 'open') t.outcome = 'aborted';
    this.current.delete(session.id);
    this.changed();
  }

  /** The failure the current mode prescribes at this stage, if any. */
  private failure(stage: FailStage): Reply | undefined {
    const m = this.modeNow;
    if ((m.kind === 'tempfail' || m.kind === 'permfail') && m.at === stage) {
      return parseReply(m.reply ?? (m.kind === 'tempfail' ? DEFAULT_TEMPFAIL_REPLY : DEFAULT_PERMFAIL_REPLY));
    }
    return undefined;
  }

  // --- recording (also used by raw sessions) -------------------------------------------------

  startTransaction(c: FakeMxConnection, socket: net.Socket, heloName: string, isTls: boolean, from: string): FakeMxTransaction {
    const t: FakeMxTransaction = {
      connectionId: c.id,
      from,
      to: [],
      refused: [],
      heloName,
      tls: isTls,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      connectedAt: c.connectedAt,
      mailAt: Date.now(),
      outcome: 'open',
    };
    this.transactions.push(t);
    this.changed();
    return t;
  }

  finishData(t: FakeMxTransaction, data: Buffer): void {
    t.dataEndAt = Date.now();
    t.size = data.length;
    t.testId = testIdOf(data);
    if (this.keepData) t.data = data;
    this.changed();
  }

  private finishStreamed(t: FakeMxTransaction, data: StreamedData): void {
    t.dataEndAt = Date.now();
    t.size = data.size;
    t.testId = data.testId;
    t.bodySha256 = data.bodySha256;
    this.changed();
  }

  private finish(t: FakeMxTransaction, outcome: Outcome, reply: string | undefined): void {
    t.outcome = outcome;
    t.reply = reply;
    this.changed();
  }

  changed(): void {
    this.emit('change');
  }
}

/** smtp-server without its fixed 100 ms early-talker delay, which only slows tests down. */
class QuickSmtpServer extends SMTPServer {
  constructor(
    options: SMTPServerOptions,
    private readonly onConnection: (c: SMTPConnection) => void,
  ) {
    super(options);
  }

  override connect(socket: net.Socket | tls.TLSSocket, socketOptions?: ConstructorParameters<typeof SMTPConnection>[2]): void {
    const connection = new SMTPConnection(this, socket, socketOptions);
    this.connections.add(connection);
    connection.on('error', (err: Error) => this._onError(err));
    connection.on('connect', (data: Parameters<SMTPServer['_onClientConnect']>[0]) => this._onClientConnect(data));
    // our scripted replies carry their own enhanced status code: send them as they are
    const send = connection.send.bind(connection);
    connection.send = (code, data, context) => (typeof data === 'string' && /^[245]\.\d{1,3}\.\d{1,3} /.test(data) ? send(code, data, false) : send(code, data, context));
    this.onConnection(connection);
    connection._setListeners(() => connection.connectionReady());
  }
}

export function startFakeMx(opts: FakeMxOptions = {}): Promise<FakeMx> {
  return FakeMx.start(opts);
}
