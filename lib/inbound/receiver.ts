/**
 * The inbound receiver's decisions at each step of an SMTP session, on the SMTP door's thread
 * (door/door-thread.ts). It takes mail for any address at the configured domains, offers no AUTH
 * and relays nothing: an address at another domain gets 550 whoever asks. Every rejection is an
 * SmtpError (or the master's refusal), turned into the reply here and nowhere else, and counted by
 * reason for the metrics.
 *
 *   connect    per-client cap 421 4.7.0 (the guard) · blocklisted IP 554 5.7.1 · connection rate
 *              421 4.7.0 · (all three before the guard sheds an idle session to make room) ·
 *              shutting down 421 4.3.2 · load gate 421 4.3.2 after a wait
 *   MAIL       bad address 553 · blocklisted sender 554 · store full 452 · store down 451 ·
 *              rate per IP / sender domain 421 4.7.0 · SIZE over the limit 552 (smtp-server)
 *   RCPT       too many 452 4.5.3 · malformed 553 5.1.3 · not ours 550 5.7.1 · inbox rate 450 4.2.1
 *   DATA       no recipient 503 (smtp-server) · too big 552 5.3.4 · store failed 451 4.3.0 ·
 *              stored: 250 Ok: queued as <id>, said only once the master has it on disk
 *   AUTH       503 5.5.1, in clear and inside TLS alike (never offered)
 *
 * What only the master holds goes through the MasterLink: the message itself, plugin hooks (a
 * session copy; only when a plugin registered one), altinbox aliases (only for an alt- address),
 * the store's admission when it is over its size. The load gate counts the master's load as the
 * master last told it, beside this thread's own event-loop lag.
 */
import type { SMTPServerAddress, SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { checkAddress } from '../accept/address.js';
import type { InboundConfig } from '../config/schema.js';
import { SmtpError, SmtpReply, asSmtpError } from '../errors/smtp-error.js';
import type { DiskGuard } from '../queue/disk-space.js';
import { ALIAS_PREFIX } from './aliases.js';
import type { Blocklist } from './blocklist.js';
import { MasterRefusal, type MasterLink } from './door/master-link.js';
import type { DoorCounters } from './door/protocol.js';
import type { LoadGate } from './load-gate.js';
import { reasonFor, type RejectReason } from './metrics.js';
import type { InboxTarget, RecipientPolicy } from './recipients.js';
import type { Throttle } from './throttle.js';

export interface ReceiverDeps {
  config: InboundConfig;
  policy: RecipientPolicy;
  throttle: Throttle;
  blocklist: Blocklist;
  /** this thread's gate: its own event-loop lag, and the master's load as last told */
  gate: LoadGate;
  disk: DiskGuard;
  master: MasterLink;
  /** told of every chunk handed over (the thread's GcNudge) */
  onBytes: (n: number) => void;
}

export class Receiver {
  private closing = false;
  /** the inbox each accepted recipient of a transaction goes to (aliases resolved at RCPT) */
  private readonly targets = new WeakMap<SMTPServerSession, Map<string, InboxTarget>>();
  private readonly connections = { accepted: 0, refused: 0 };
  private readonly rejected: Partial<Record<RejectReason, number>> = {};

  constructor(private readonly deps: ReceiverDeps) {}

  /** From now on new connections and transactions get 421 (the door is closing). */
  stopping(): void {
    this.closing = true;
  }

  /** Running totals for the metrics (the master adds them up across threads). */
  counters(): DoorCounters {
    const { throttle, gate } = this.deps;
    return { connections: { ...this.connections }, rejected: { ...this.rejected }, throttled: { ...throttle.refused }, loadRefused: gate.refused, lagMs: gate.lagMs };
  }

  /** Runs one step's decision for smtp-server: a refusal is counted by reason and becomes its reply. */
  decide<T>(work: Promise<T>, cb: (err?: Error | null, value?: T) => void): void {
    work.then(
      (value) => cb(null, value),
      (err: unknown) => {
        if (err instanceof MasterRefusal) {
          this.count(err.reason);
          return cb(new SmtpReply(err.responseCode, err.replyText));
        }
        const smtpErr = asSmtpError(err, () => SmtpError.hookFailed());
        this.count(err instanceof SmtpError ? reasonFor(smtpErr) : 'plugin');
        cb(SmtpReply.of(smtpErr));
      },
    );
  }

  private count(reason: RejectReason): void {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
  }

  /** The blocklist and the connection rate, which need nothing but the client's address. */
  screen(ip: string | undefined): SmtpError | undefined {
    const { blocklist, throttle } = this.deps;
    const refusal = this.closing ? SmtpError.shuttingDown() : blocklist.checkClient(ip) ?? throttle.connection(ip);
    if (refusal) {
      this.connections.refused++;
      this.count(reasonFor(refusal));
    }
    return refusal;
  }

  async connect(session: SMTPServerSession): Promise<void> {
    const { gate, master } = this.deps;
    try {
      if (this.closing) throw SmtpError.shuttingDown();
      if (!(await gate.admit())) throw SmtpError.overloaded();
      if (this.closing) throw SmtpError.shuttingDown();
      await master.hook('inbound:connect', session);
    } catch (err) {
      this.connections.refused++;
      throw err;
    }
    this.connections.accepted++;
  }

  async mailFrom(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { blocklist, throttle, master, disk, config } = this.deps;
    if (this.closing) throw SmtpError.shuttingDown();
    checkAddress(address.address, true);
    const listed = blocklist.checkSender(address.address);
    if (listed) throw listed;
    const args = address.args as Record<string, string> | false | undefined;
    const declared = Number((args && args.SIZE) || 0) || 0;
    if (!disk.hasRoom(Math.max(declared, config.maxSize) * 1.5)) throw SmtpError.insufficientStorage();
    if (!master.state.storeWritable) throw SmtpError.storageFailed();
    if (master.state.storeOverLimit) await master.admission();
    const limited = throttle.transaction(session.remoteAddress, address.address);
    if (limited) throw limited;
    await master.hook('inbound:mail_from', session, address);
    this.targets.set(session, new Map());
  }

  async rcptTo(address: SMTPServerAddress, session: SMTPServerSession): Promise<void> {
    const { config, policy, throttle, master } = this.deps;
    const { rcptTo } = session.envelope;
    if (rcptTo.length >= config.maxRecipients) {
      // a repeated recipient replaces its earlier entry (smtp-server compares without case)
      const key = address.address.toLowerCase();
      if (!rcptTo.some((r) => r.address.toLowerCase() === key)) throw SmtpError.tooManyRecipients(config.maxRecipients);
    }
    const target = await this.unalias(policy.target(address.address));
    const limited = throttle.inbox(session.remoteAddress, target.inbox);
    if (limited) throw limited;
    await master.hook('inbound:rcpt_to', session, address);
    this.targets.get(session)?.set(address.address.toLowerCase(), target);
  }

  /** An altinbox alias delivers to its address's inbox; the alias stays the address it was sent to. */
  private async unalias(target: InboxTarget): Promise<InboxTarget> {
    if (!target.inbox.startsWith(ALIAS_PREFIX)) return target;
    const real = await this.deps.master.alias(target.inbox);
    return real ? { inbox: real, tag: '', original: target.original } : target;
  }

  /** Hands the message to the master; resolves with the 250's text once it is stored. */
  data(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<string> {
    const { policy, master, onBytes } = this.deps;
    const known = this.targets.get(session);
    const rcpts = session.envelope.rcptTo.map((r) => known?.get(r.address.toLowerCase()) ?? policy.target(r.address));
    return master.receive(stream, session, rcpts, onBytes);
  }
}
