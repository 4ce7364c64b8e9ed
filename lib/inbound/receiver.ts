/**
 * The inbound receiver's SMTP door: mail for any address at the configured domains, stored in
 * the inbox. It offers no AUTH and relays nothing: an address at another domain gets 550 whoever
 * asks. Every rejection is an SmtpError, turned into the reply here and nowhere else.
 *
 *   connect    per-client cap 421 4.7.0 · blocklisted IP 554 5.7.1 · connection rate 421 4.7.0 ·
 *              (all three before the guard sheds an idle session to make room) · shutting down
 *              421 4.3.2 · load gate 421 4.3.2 after a wait
 *   MAIL       bad address 553 · blocklisted sender 554 · store full 452 · store down 451 ·
 *              rate per IP / sender domain 421 4.7.0 · SIZE over the limit 552 (smtp-server)
 *   RCPT       too many 452 4.5.3 · malformed 553 5.1.3 · not ours 550 5.7.1 · inbox rate 450 4.2.1
 *   DATA       no recipient 503 (smtp-server) · too big 552 5.3.4 · store failed 451 4.3.0 ·
 *              stored: 250 Ok: queued as <id>, said only once the message is on disk
 *   AUTH       503 5.5.1, in clear and inside TLS alike (never offered)
 *
 * The same guards as submission hold (guarded-server.ts): deadlines, caps per client (an IPv6
 * client by its /64), junk and failed-command limits, PROXY from configured peers only.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerOptions, SMTPServerSession } from 'smtp-server';
import { checkAddress } from '../accept/address.js';
import { GuardedSmtpServer } from '../accept/guarded-server.js';
import { JUNK_COMMAND_LIMIT } from '../accept/session-guards.js';
import { domainMatcher } from '../config/domains.js';
import { networkMatcher } from '../config/net.js';
import type { InboundConfig } from '../config/schema.js';
import { SmtpError, SmtpReply, asSmtpError } from '../errors/smtp-error.js';
import type { HookRunner } from '../plugins/runner.js';
import { isStoreUnavailable } from '../store/write-guard.js';
import type { DiskGuard } from '../queue/disk-space.js';
import type { Blocklist } from './blocklist.js';
import type { Inbox } from './inbox.js';
import type { LoadGate } from './load-gate.js';
import type { InboundMetrics, RejectReason } from './metrics.js';
import type { InboxTarget, RecipientPolicy } from './recipients.js';
import type { Throttle } from './throttle.js';

export interface ReceiverDeps {
  config: InboundConfig;
  hostname: string;
  inbox: Inbox;
  policy: RecipientPolicy;
  throttle: Throttle;
  blocklist: Blocklist;
  gate: LoadGate;
  disk: DiskGuard;
  hooks: HookRunner;
  metrics: InboundMetrics;
  logger: Logger;
}

const toReply = (err: SmtpError) => SmtpReply.of(err);

export class Receiver {
  readonly server: GuardedSmtpServer;
  private closing = false;
  /** the inbox each accepted recipient of a transaction goes to (aliases resolved at RCPT) */
  private readonly targets = new WeakMap<SMTPServerSession, Map<string, InboxTarget>>();
  /** which configured domain entry an inbox falls under, for the metrics label */
  private readonly domainLabel: (inbox: string) => string;

  constructor(private readonly deps: ReceiverDeps) {
    const { config, throttle } = deps;
    const tls = config.key && config.cert ? { key: readFileSync(config.key), cert: readFileSync(config.cert) } : {};
    const options: SMTPServerOptions = {
      name: deps.hostname,
      banner: 'Sluice',
      ...tls,
      // this door takes mail for its own domains only: nobody logs in
      disabledCommands: config.key ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      authOptional: true,
      size: config.maxSize,
      hideSize: false,
      hide8BITMIME: false,
      hideSMTPUTF8: false,
      hidePIPELINING: false,
      hideENHANCEDSTATUSCODES: false,
      hideDSN: true,
      disableReverseLookup: true,
      useProxy: config.proxyProtocol.length > 0,
      maxClients: config.maxClients,
      socketTimeout: config.socketTimeout,
      logger: false,
      onConnect: (session, cb) => this.callback(this.onConnect(session), cb),
      onMailFrom: (address, session, cb) => this.callback(this.onMailFrom(address, session), cb),
      onRcptTo: (address, session, cb) => this.callback(this.onRcptTo(address, session), cb),
      onData: (stream, session, cb) => this.callback(this.onData(stream, session), cb),
    };
    this.server = new GuardedSmtpServer(options, {
      greetingDelayMs: config.greetingDelay,
      maxConnectionsPerIp: config.maxConnectionsPerIp,
      uncapped: (ip) => throttle.exempt(ip),
      commandTimeoutMs: config.commandTimeout,
      dataTimeoutMs: config.dataTimeout,
      sessionTimeoutMs: config.sessionTimeout,
      maxJunkCommands: JUNK_COMMAND_LIMIT,
      maxBadCommands: config.maxBadCommands,
      proxyFrom: networkMatcher(config.proxyProtocol),
      authAfterTls: false,
      // refusals by address alone, decided before the guard sheds anyone to make room
      screen: (ip) => this.screen(ip),
    });
    this.server.on('error', (err) => deps.logger.warn({ err, listener: 'inbound' }, `inbound listener: ${err.message}`));
    const matchers = config.domains.map((d) => [d, domainMatcher([d])] as const);
    this.domainLabel = (inbox) => {
      const domain = inbox.slice(inbox.lastIndexOf('@') + 1);
      return matchers.find(([, m]) => m(domain))?.[0] ?? 'other';
    };
  }

  /**
   * The accept queue holds as many connections as the receiver serves at once (maxClients): when
   * it overflows, Linux drops the handshake's last ACK and the client waits, believing itself
   * connected, for a greeting that comes only after SYN-ACK retransmits (a second or more). A
   * burst of senders, or the event loop stalled for a moment, must queue instead; the guard then
   * answers each of them (421 or shedding an idle session), and the kernel caps the figure at
   * net.core.somaxconn.
   */
  start(): Promise<AddressInfo> {
    return this.server.listenOn(this.deps.config.port, this.deps.config.host, Math.max(511, this.deps.config.maxClients));
  }

  /** Stops taking connections; open sessions get 421 from smtp-server's close. */
  stop(): Promise<void> {
    this.closing = true;
    return this.server.closeAll();
  }

  private callback<T>(work: Promise<T>, cb: (err?: Error | null, value?: T) => void): void {
    work.then(
      (value) => cb(null, value),
      (err: unknown) => {
        // a read of the store while it reopens after a failed write (an alias at RCPT): try again later
        const smtpErr = asSmtpError(err, () => (isStoreUnavailable(err) ? SmtpError.storageFailed() : SmtpError.hookFailed()));
        this.deps.metrics.rejected.inc({ reason: reasonOf(smtpErr, err) });
        cb(toReply(smtpErr));
      },
    );
  }

  /** The blocklist and the connection rate, which need nothing but the client's address. */
  private screen(ip: string | undefined): SmtpError | undefined {
    const { blocklist, throttle, metrics } = this.deps;
    const refusal = this.closing ? SmtpError.shuttingDown() : blocklist.checkClient(ip) ?? throttle.connection(ip);
    if (refusal) {
      metrics.connections.inc({ result: 'refused' });
      metrics.rejected.inc({ reason: reasonOf(refusal, refusal) });
    }
    return refusal;
  }

  private async onConnect(session: SMTPServerSession): Promise<void> {
    const { gate, metrics, hooks } = this.deps;
    try {
      if (this.closing) throw SmtpError.shuttingDown();
      if (!(await gate.admit())) throw SmtpError.overloaded();
      if (this.closing) throw SmtpError.shuttingDown();
      await hooks.run('inbound:connect', session);
    } catch (err) {
      metrics.connections.inc({ result: 'refused' });
      throw err;
    }
    metrics.connections.inc({ result: 'accepted' });
  }

  private async onMailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { blocklist, throttle, inbox, disk, config, hooks } = this.deps;
    if (this.closing) throw SmtpError.shuttingDown();
    checkAddress(address.address, true);
    const listed = blocklist.checkSender(address.address);
    if (listed) throw listed;
    const args = address.args as Record<string, string> | false | undefined;
    const declared = Number((args && args.SIZE) || 0) || 0;
    if (!disk.hasRoom(Math.max(declared, config.maxSize) * 1.5)) throw SmtpError.insufficientStorage();
    const admission = await inbox.admission();
    if (admission) throw admission;
    const limited = throttle.transaction(session.remoteAddress, address.address);
    if (limited) throw limited;
    await hooks.run('inbound:mail_from', address, session);
    this.targets.set(session, new Map());
  }

  private async onRcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { config, policy, throttle, hooks } = this.deps;
    const { rcptTo } = session.envelope;
    if (rcptTo.length >= config.maxRecipients) {
      // a repeated recipient replaces its earlier entry (smtp-server compares without case)
      const key = address.address.toLowerCase();
      if (!rcptTo.some((r) => r.address.toLowerCase() === key)) throw SmtpError.tooManyRecipients(config.maxRecipients);
    }
    const target = await this.unalias(policy.target(address.address));
    const limited = throttle.inbox(session.remoteAddress, target.inbox);
    if (limited) throw limited;
    await hooks.run('inbound:rcpt_to', address, session);
    this.targets.get(session)?.set(address.address.toLowerCase(), target);
  }

  /** An altinbox alias delivers to its address's inbox; the alias stays the address it was sent to. */
  private async unalias(target: InboxTarget): Promise<InboxTarget> {
    const real = await this.deps.inbox.aliases.resolve(target.inbox);
    return real ? { inbox: real, tag: '', original: target.original } : target;
  }

  private async onData(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { inbox, policy, config, metrics } = this.deps;
    const known = this.targets.get(session);
    const rcpts = session.envelope.rcptTo.map((r) => known?.get(r.address.toLowerCase()) ?? policy.target(r.address));
    const socket = (session as SMTPServerSession & { tlsOptions?: { name?: string; version?: string } | false }).tlsOptions;
    const id = await inbox.receive({
      from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
      rcpts,
      client: {
        ip: session.remoteAddress,
        helo: session.hostNameAppearsAs ?? '',
        tls: Boolean(session.secure),
        ...(session.secure && socket ? { tlsProtocol: socket.version, tlsCipher: socket.name } : {}),
      },
      source: stream,
      maxSizeBytes: config.maxSize,
    });
    for (const inboxName of new Set(rcpts.map((r) => r.inbox))) metrics.messages.inc({ domain: this.domainLabel(inboxName) });
    return `Ok: queued as ${id}`;
  }
}

/** The bounded `reason` label of a refusal. */
function reasonOf(err: SmtpError, original: unknown): RejectReason {
  if (isStoreUnavailable(original)) return 'store_failed';
  if (!(original instanceof SmtpError)) return 'plugin';
  const { responseCode: code, enhancedStatus: status } = err;
  if (code === 550 && status === '5.7.1') return 'relay_denied';
  if (code === 553 || code === 501) return 'bad_address';
  if (code === 452 && status === '4.5.3') return 'too_many_recipients';
  if (code === 552) return 'too_big';
  if (code === 554) return 'blocklist';
  if ((code === 421 && status === '4.7.0') || code === 450) return 'throttled';
  if (code === 421 && status === '4.3.2') return 'overloaded';
  if (code === 452) return 'store_full';
  if (code === 451) return 'store_failed';
  return 'other';
}
