/**
 * One SMTP submission listener: the policy of each command (who may send, which addresses, how
 * many recipients), then DATA handed to ingest(). Every rejection is an SmtpError, turned into
 * the reply here and nowhere else.
 *
 * Relay policy: a client inside trustedNetworks may send without AUTH on an interface whose
 * `auth` is "untrusted"; anyone else must authenticate first (530). There is no other way in.
 * Behind a PROXY protocol peer the client's address is the one its header names; an address
 * that is itself a listed proxy (the header said UNKNOWN, or named the proxy) is never trusted,
 * so a proxy cannot lend its own place in trustedNetworks to whoever connects through it.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession, SMTPServerOptions } from 'smtp-server';
import type { Config, ListenerConfig } from '../config/schema.js';
import { networkMatcher } from '../config/net.js';
import { SmtpError, SmtpReply, asSmtpError } from '../errors/smtp-error.js';
import type { AuthAttempt } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { DiskGuard } from '../queue/disk-space.js';
import type { NotifyOn, RecipientDsn } from '../queue/types.js';
import { checkAddress } from './address.js';
import { GuardedSmtpServer } from './guarded-server.js';
import { JUNK_COMMAND_LIMIT } from './session-guards.js';
import type { AuthFailures } from './auth-failures.js';
import type { Ingest, IngestRequest } from './ingest.js';
import type { PasswordChecker } from './password-checker.js';
import { hashPassword } from './passwords.js';

export interface FeederDeps {
  config: Config;
  name: string;
  listener: ListenerConfig;
  ingest: Ingest;
  hooks: HookRunner;
  disk: DiskGuard;
  logger: Logger;
  /** scrypt on a thread of its own (shared by every listener) */
  passwords: PasswordChecker;
  /** failed logins per client address (shared by every listener) */
  authFailures: AuthFailures;
}

let dummyHash: Promise<string> | undefined;
/** A hash no password matches (its password is random), made once. */
const unknownUserHash = () => (dummyHash ??= hashPassword(randomBytes(16).toString('hex')));

/** smtp-server wants callbacks; our policy is async functions that throw SmtpError. */
const toReply = (err: SmtpError) => SmtpReply.of(err);

/**
 * Failed logins in one session: answers slow down from the third, the fifth ends the session.
 * Across sessions, AuthFailures blocks an address past smtp.maxAuthFailures.
 */
const AUTH_FAILURES_BEFORE_TARPIT = 3;
const AUTH_FAILURES_BEFORE_CLOSE = 5;
const AUTH_TARPIT_MS = 1000;

export class SmtpFeeder {
  private readonly sessionAuthFailures = new WeakMap<SMTPServerSession, number>();
  readonly server: GuardedSmtpServer;
  private readonly isTrusted: (ip: string | undefined) => boolean;
  private closing = false;

  constructor(private readonly deps: FeederDeps) {
    const { listener, config } = deps;
    const inTrustedNetworks = networkMatcher(listener.trustedNetworks);
    const proxyFrom = networkMatcher(listener.proxyProtocol);
    this.isTrusted = (ip) => inTrustedNetworks(ip) && !proxyFrom(ip);
    const tls = listener.key && listener.cert ? { key: readFileSync(listener.key), cert: readFileSync(listener.cert) } : {};
    const options: SMTPServerOptions = {
      name: config.hostname,
      banner: 'Sluice',
      secure: listener.secure,
      ...tls,
      disabledCommands: listener.key ? [] : ['STARTTLS'],
      authMethods: [...listener.authMethods],
      // where AUTH may be used in clear is decided per session by offerCommands()
      allowInsecureAuth: true,
      authOptional: true,
      size: listener.maxSize,
      hideSize: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      hidePIPELINING: false,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: false,
      disableReverseLookup: !listener.reverseLookup,
      // which peers send a PROXY header is decided by GuardOptions.proxyFrom
      useProxy: listener.proxyProtocol.length > 0,
      maxClients: listener.maxClients,
      socketTimeout: listener.socketTimeout,
      logger: false,
      onAuth: (auth, session, cb) => this.callback(this.onAuth(auth, session), cb),
      onMailFrom: (address, session, cb) => this.callback(this.counted(this.onMailFrom(address, session)), cb),
      onRcptTo: (address, session, cb) => this.callback(this.counted(this.onRcptTo(address, session)), cb),
      onData: (stream, session, cb) => this.callback(this.onData(stream, session), cb),
      onConnect: (session, cb) => this.callback(this.onConnect(session), cb),
      onSecure: (_socket, session, cb) => {
        this.offerCommands(session);
        cb();
      },
    };
    this.server = new GuardedSmtpServer(options, {
      greetingDelayMs: listener.greetingDelay,
      maxConnectionsPerIp: listener.maxConnectionsPerIp,
      commandTimeoutMs: listener.commandTimeout,
      dataTimeoutMs: listener.dataTimeout,
      sessionTimeoutMs: listener.sessionTimeout,
      maxJunkCommands: JUNK_COMMAND_LIMIT,
      maxBadCommands: listener.maxBadCommands,
      proxyFrom,
      authAfterTls: listener.authMethods.length > 0,
    });
    this.server.on('error', (err) => deps.logger.warn({ err, listener: deps.name }, `SMTP listener ${deps.name}: ${err.message}`));
  }

  start(): Promise<AddressInfo> {
    return this.server.listenOn(this.deps.listener.port, this.deps.listener.host);
  }

  /** Stops taking connections; open sessions get 421 from smtp-server's close. */
  stop(): Promise<void> {
    this.closing = true;
    return this.server.closeAll();
  }

  /** SMTP sessions open now (what a stop still waits for). */
  get sessions(): number {
    return this.server.connections.size;
  }

  /** An envelope command's refusal is counted as the smtp door's (DATA's are counted by ingest). */
  private counted<T>(work: Promise<T>): Promise<T> {
    return work.catch((err: unknown) => {
      if (err instanceof SmtpError) this.deps.ingest.refused('smtp', err);
      throw err;
    });
  }

  private callback<T>(work: Promise<T>, cb: (err?: Error | null, value?: T) => void): void {
    work.then(
      (value) => cb(null, value),
      (err: unknown) => cb(toReply(asSmtpError(err, () => SmtpError.hookFailed()))),
    );
  }

  private mayRelayWithoutAuth(session: SMTPServerSession): boolean {
    return this.deps.listener.auth === 'untrusted' && this.isTrusted(session.remoteAddress);
  }

  /**
   * AUTH is offered only where credentials are safe: on TLS, to clients in trustedNetworks, or
   * where allowInsecureAuth says so. smtp-server itself would offer it in clear whenever
   * STARTTLS is not configured. Runs at connect and again once TLS is up.
   */
  private offerCommands(session: SMTPServerSession): void {
    const { listener } = this.deps;
    const disabled = listener.key ? [] : ['STARTTLS'];
    if (!listener.authMethods.length || !this.authIsSafe(session)) disabled.push('AUTH');
    session.disabledCommands = disabled;
  }

  private authIsSafe(session: SMTPServerSession): boolean {
    return session.secure || this.deps.listener.allowInsecureAuth || this.isTrusted(session.remoteAddress);
  }

  private async onConnect(session: SMTPServerSession): Promise<void> {
    if (this.closing) throw SmtpError.shuttingDown();
    this.offerCommands(session);
    await this.deps.hooks.run('smtp:connect', session);
  }

  /**
   * smtp:auth handlers go first: one may accept the login (auth.accept()), refuse it (throw) or
   * pass. A login no handler accepted is checked against [smtp.users]; nobody's → 535.
   */
  private async onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession): Promise<{ user: string }> {
    if (!this.authIsSafe(session)) throw SmtpError.encryptionRequired();
    const ip = session.remoteAddress;
    const { authFailures, logger } = this.deps;
    // an address past its failures is refused before any plugin or hash runs
    if (authFailures.blocked(ip)) throw SmtpError.tooManyAuthFailuresFromAddress();
    const username = auth.username ?? '';
    const password = typeof auth.password === 'string' ? auth.password : '';
    const fail = (why: string) => {
      const failures = this.countSessionFailure(session);
      logger.info({ event: 'AUTH_FAILED', user: username.slice(0, 64), ip, why, failures }, 'authentication failed');
      const fromAddress = authFailures.note(ip);
      if (fromAddress === this.deps.config.smtp.maxAuthFailures) {
        const until = new Date(authFailures.until(ip)).toISOString();
        logger.warn({ event: 'AUTH_BLOCKED', ip, failures: fromAddress, until }, `${fromAddress} failed logins from ${ip}: its logins are refused until ${until}`);
      }
    };
    try {
      return await this.checkLogin(auth, session, username, password, fail);
    } catch (err) {
      // password guessing: from the third failure each answer waits, after the fifth the
      // session ends (421), so one connection tries a handful of passwords, slowly
      const failures = this.sessionAuthFailures.get(session) ?? 0;
      if (failures >= AUTH_FAILURES_BEFORE_CLOSE) throw SmtpError.tooManyAuthFailures();
      if (failures >= AUTH_FAILURES_BEFORE_TARPIT) await new Promise((resolve) => setTimeout(resolve, AUTH_TARPIT_MS));
      throw err;
    }
  }

  private async checkLogin(auth: SMTPServerAuthentication, session: SMTPServerSession, username: string, password: string, fail: (why: string) => void): Promise<{ user: string }> {
    if (!username) {
      fail('no user name');
      throw SmtpError.authFailed();
    }
    const attempt = authAttempt(auth.method, username, password);
    try {
      await this.deps.hooks.run('smtp:auth', attempt, session);
    } catch (err) {
      fail(err instanceof SmtpError && err.temporary ? 'a plugin failed (temporary error)' : 'refused by a plugin');
      throw err;
    }
    if (attempt.acceptedUser !== undefined) return { user: attempt.acceptedUser };
    const users = this.deps.config.smtp.users;
    // own keys only: "constructor" or "__proto__" are not users
    const stored = Object.hasOwn(users, username) ? users[username] : undefined;
    let verified: boolean;
    try {
      // an unknown user costs the same scrypt as a known one, so timing does not tell them apart
      verified = await this.deps.passwords.verify(password, stored ?? (await unknownUserHash()));
    } catch (err) {
      // the checks are backed up (a flood): this counts against the session like a failure, so
      // that it slows down and ends as a guessing one does instead of looping on quick 454s, but
      // not against the address (no password was found wrong)
      this.countSessionFailure(session);
      throw err;
    }
    const ok = stored !== undefined && password !== '' && verified;
    if (!ok) {
      fail('bad credentials');
      throw SmtpError.authFailed();
    }
    return { user: username };
  }

  private countSessionFailure(session: SMTPServerSession): number {
    const failures = (this.sessionAuthFailures.get(session) ?? 0) + 1;
    this.sessionAuthFailures.set(session, failures);
    return failures;
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    if (this.closing) throw SmtpError.shuttingDown();
    if (!session.user && !this.mayRelayWithoutAuth(session)) throw SmtpError.authRequired();
    const args = address.args as Record<string, string> | false | undefined;
    const declared = Number((args && args.SIZE) || 0) || 0;
    if (!this.deps.disk.hasRoom(Math.max(declared, this.deps.listener.maxSize) * 1.5)) throw SmtpError.insufficientStorage();
    checkAddress(address.address, true);
    await this.deps.hooks.run('smtp:mail_from', address, session);
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { rcptTo } = session.envelope;
    if (rcptTo.length >= this.deps.listener.maxRecipients) {
      // a repeated recipient replaces its earlier entry (smtp-server compares without case), so
      // it does not count; the scan runs only at the limit
      const key = address.address.toLowerCase();
      if (!rcptTo.some((r) => r.address.toLowerCase() === key)) throw SmtpError.tooManyRecipients(this.deps.listener.maxRecipients);
    }
    checkAddress(address.address, false);
    await this.deps.hooks.run('smtp:rcpt_to', address, session);
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { listener, ingest, hooks, name } = this.deps;
    const from = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    const to = session.envelope.rcptTo.map((r) => r.address);
    const origin = {
      via: 'smtp' as const,
      interface: name,
      remoteAddress: session.remoteAddress,
      clientHostname: session.clientHostname,
      user: typeof session.user === 'string' ? session.user : undefined,
      transmissionType: session.transmissionType,
    };
    try {
      await hooks.run('smtp:data', { id: '', from, to, origin, session }, session);
    } catch (err) {
      // read the message to its end so the session stays in step; a client that leaves
      // mid-message destroys the stream, which then closes without an 'end'
      stream.resume();
      await new Promise((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
      });
      throw err;
    }
    const result = await ingest.ingest({
      from,
      to,
      origin,
      source: stream,
      maxSizeBytes: listener.maxSize,
      helo: session.hostNameAppearsAs,
      hideClientInfo: listener.hideClientInfo,
      session,
      dsn: dsnOf(session),
    });
    return `Ok: queued as ${result.id}`;
  }
}

/**
 * The DSN parameters smtp-server checked and decoded (RET, ENVID on MAIL; NOTIFY, ORCPT on each
 * RCPT), as ingest takes them; undefined when the client gave none.
 */
function dsnOf(session: SMTPServerSession): IngestRequest['dsn'] {
  const envelope = session.envelope as SMTPServerSession['envelope'] & { dsn?: { ret?: string | null; envid?: string | null } };
  const ret = envelope.dsn?.ret === 'FULL' || envelope.dsn?.ret === 'HDRS' ? envelope.dsn.ret : undefined;
  const envid = envelope.dsn?.envid || undefined;
  const recipients = new Map<string, RecipientDsn>();
  for (const rcpt of envelope.rcptTo as (SMTPServerAddress & { dsn?: { notify?: string[]; orcpt?: string } })[]) {
    const notify = rcpt.dsn?.notify?.filter((n): n is NotifyOn => ['NEVER', 'SUCCESS', 'FAILURE', 'DELAY'].includes(n));
    const orcpt = rcpt.dsn?.orcpt;
    if (notify?.length || orcpt) recipients.set(rcpt.address.toLowerCase(), { ...(notify?.length ? { notify } : {}), ...(orcpt ? { orcpt } : {}) });
  }
  if (!ret && !envid && !recipients.size) return undefined;
  return { ...(ret ? { ret } : {}), ...(envid ? { envid } : {}), ...(recipients.size ? { recipients } : {}) };
}

/** The AUTH attempt handed to smtp:auth handlers. */
function authAttempt(method: string, username: string, password: string): AuthAttempt {
  let accepted: string | undefined;
  return {
    method,
    username,
    password,
    accept(user = username) {
      if (typeof user !== 'string' || !user || /[\r\n]/.test(user)) throw new TypeError('auth.accept(user): user must be a one-line, non-empty string');
      accepted = user;
    },
    get acceptedUser() {
      return accepted;
    },
  };
}
