/**
 * One SMTP submission listener: the policy of each command (who may send, which addresses, how
 * many recipients), then DATA handed to ingest(). Every rejection is an SmtpError, turned into
 * the reply here and nowhere else.
 *
 * Relay policy: a client inside trustedNetworks may send without AUTH on an interface whose
 * `auth` is "untrusted"; anyone else must authenticate first (530). There is no other way in.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SMTPServerAddress, SMTPServerAuthentication, SMTPServerDataStream, SMTPServerSession, SMTPServerOptions } from 'smtp-server';
import type { Config, ListenerConfig } from '../config/schema.js';
import { networkMatcher } from '../config/net.js';
import { SmtpError, asSmtpError } from '../errors/smtp-error.js';
import type { AuthAttempt } from '../plugins/hooks.js';
import type { HookRunner } from '../plugins/runner.js';
import type { DiskGuard } from '../queue/disk-space.js';
import { checkAddress } from './address.js';
import { GuardedSmtpServer } from './guarded-server.js';
import { JUNK_COMMAND_LIMIT } from './session-guards.js';
import type { Ingest } from './ingest.js';
import { hashPassword, verifyPassword } from './passwords.js';

export interface FeederDeps {
  config: Config;
  name: string;
  listener: ListenerConfig;
  ingest: Ingest;
  hooks: HookRunner;
  disk: DiskGuard;
  logger: Logger;
}

let dummyHash: Promise<string> | undefined;
/** A hash no password matches (its password is random), made once. */
const unknownUserHash = () => (dummyHash ??= hashPassword(randomBytes(16).toString('hex')));

/** smtp-server wants callbacks; our policy is async functions that throw SmtpError. */
const toReply = (err: SmtpError) => Object.assign(new Error(err.replyText), { responseCode: err.responseCode });

/** Failed logins in one session: answers slow down from the third, the fifth ends the session. */
const AUTH_FAILURES_BEFORE_TARPIT = 3;
const AUTH_FAILURES_BEFORE_CLOSE = 5;
const AUTH_TARPIT_MS = 1000;

export class SmtpFeeder {
  private readonly authFailures = new WeakMap<SMTPServerSession, number>();
  readonly server: GuardedSmtpServer;
  private readonly isTrusted: (ip: string | undefined) => boolean;
  private closing = false;

  constructor(private readonly deps: FeederDeps) {
    const { listener, config } = deps;
    this.isTrusted = networkMatcher(listener.trustedNetworks);
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
      onMailFrom: (address, session, cb) => this.callback(this.onMailFrom(address, session), cb),
      onRcptTo: (address, session, cb) => this.callback(this.onRcptTo(address, session), cb),
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
      proxyFrom: networkMatcher(listener.proxyProtocol),
      authAfterTls: listener.authMethods.length > 0,
    });
    this.server.on('error', (err) => deps.logger.warn({ err, listener: deps.name }, `SMTP listener ${deps.name}: ${err.message}`));
  }

  async start(): Promise<AddressInfo> {
    const { host, port } = this.deps.listener;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.server.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.server.off('error', onError);
        resolve();
      });
    });
    return this.server.server.address() as AddressInfo;
  }

  /** Stops taking connections; open sessions get 421 from smtp-server's close. */
  stop(): Promise<void> {
    this.closing = true;
    return new Promise((resolve) => this.server.close(() => resolve()));
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
    const username = auth.username ?? '';
    const password = typeof auth.password === 'string' ? auth.password : '';
    const fail = (why: string) => {
      const failures = (this.authFailures.get(session) ?? 0) + 1;
      this.authFailures.set(session, failures);
      this.deps.logger.info({ event: 'AUTH_FAILED', user: username.slice(0, 64), ip: session.remoteAddress, why, failures }, 'authentication failed');
    };
    try {
      return await this.checkLogin(auth, session, username, password, fail);
    } catch (err) {
      // password guessing: from the third failure each answer waits, after the fifth the
      // session ends (421), so one connection tries a handful of passwords, slowly
      const failures = this.authFailures.get(session) ?? 0;
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
    // an unknown user costs the same scrypt as a known one, so timing does not tell them apart
    const verified = await verifyPassword(password, stored ?? (await unknownUserHash()));
    const ok = stored !== undefined && password !== '' && verified;
    if (!ok) {
      fail('bad credentials');
      throw SmtpError.authFailed();
    }
    return { user: username };
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
    });
    return `Ok: queued as ${result.id}`;
  }
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
