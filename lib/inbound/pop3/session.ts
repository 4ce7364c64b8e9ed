/**
 * One POP3 session (RFC 1939, with CAPA from RFC 2449 and STLS from RFC 2595): the state
 * machine and one handler per command, dispatched from a table. Handlers return the reply or
 * throw a Pop3Error; the reply lines are written in one place, here.
 *
 *   AUTHORIZATION  CAPA, STLS, USER <address>, PASS <key>, QUIT
 *   TRANSACTION    CAPA, STAT, LIST [n], UIDL [n], RETR n, TOP n k, DELE n, RSET, NOOP, QUIT
 *   UPDATE         at QUIT after a login: the messages marked with DELE leave the inbox
 *
 * Invariants:
 * - only a private inbox with its key logs in; an inbox that is not private and a wrong key get
 *   the same answer after the same delay, so nothing tells whether an inbox is private;
 * - a client address past maxLoginFailures (IPv6: its /64) is refused at once until its window ends;
 * - commands per session are bounded (COMMANDS_BASE plus COMMANDS_PER_MESSAGE for each message
 *   of the maildrop, enough to read and delete them all), and so are failed commands.
 */
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { AuthFailures } from '../../accept/auth-failures.js';
import type { Pop3Config } from '../../config/schema.js';
import type { Inbox } from '../inbox.js';
import type { RecipientPolicy } from '../recipients.js';
import { CLOSED, type Pop3Connection } from './connection.js';
import { Pop3Error } from './errors.js';
import { Maildrop } from './maildrop.js';
import { multilineBody, multilineText } from './multiline.js';
import { topOf } from './top.js';

export interface SessionDeps {
  config: Pop3Config;
  hostname: string;
  inbox: Inbox;
  policy: RecipientPolicy;
  /** messages kept per inbox: the most a maildrop holds */
  maxPerInbox: number;
  failures: AuthFailures;
  /** set when STLS is offered */
  tls: SecureContext | undefined;
  logger: Logger;
}

/** Commands any session may give, before the allowance for its maildrop's messages. */
const COMMANDS_BASE = 200;
/** LIST, UIDL, TOP, RETR and DELE of each message. */
const COMMANDS_PER_MESSAGE = 5;
/** Failed commands (-ERR replies) in one session before it is closed. */
const MAX_ERRORS = 20;
/** Failed logins on one connection before it is closed. */
const MAX_SESSION_LOGIN_FAILURES = 3;

type State = 'authorization' | 'transaction';

interface Reply {
  /** the status line after "+OK" */
  ok: string;
  /** a multi-line response of short lines */
  lines?: readonly string[];
  /** a multi-line response carrying a message (already encoded, terminator included) */
  body?: AsyncIterable<Buffer>;
  /** after the reply: close the session; or switch to TLS (the status line is sent with the switch) */
  then?: 'close' | 'tls';
}

interface Command {
  states: readonly State[];
  run(session: Pop3Session, args: string[], rest: string): Promise<Reply>;
}

const bothStates = ['authorization', 'transaction'] as const;

/** The command table (RFC 1939 §4-7; CAPA: RFC 2449; STLS: RFC 2595). */
const COMMANDS: Record<string, Command> = {
  CAPA: { states: bothStates, run: async (s) => ({ ok: 'Capability list follows', lines: s.capabilities() }) },
  STLS: { states: ['authorization'], run: async (s, args) => s.stls(args) },
  USER: { states: ['authorization'], run: async (s, args) => s.userCommand(args) },
  PASS: { states: ['authorization'], run: (s, _args, rest) => s.pass(rest) },
  QUIT: { states: bothStates, run: (s) => s.quit() },
  STAT: {
    states: ['transaction'],
    run: async (s) => {
      const { count, size } = s.drop.stat();
      return { ok: `${count} ${size}` };
    },
  },
  LIST: { states: ['transaction'], run: async (s, args) => s.listing(args, 'LIST [n]', (m) => `${m.n} ${m.size}`) },
  UIDL: { states: ['transaction'], run: async (s, args) => s.listing(args, 'UIDL [n]', (m) => `${m.n} ${m.id}`) },
  RETR: { states: ['transaction'], run: (s, args) => s.retr(args) },
  TOP: { states: ['transaction'], run: (s, args) => s.top(args) },
  DELE: {
    states: ['transaction'],
    run: async (s, args) => {
      const m = s.drop.mark(one(args, 'DELE n'));
      return { ok: `Message ${m.n} marked as deleted (it leaves the inbox at QUIT)` };
    },
  },
  RSET: {
    states: ['transaction'],
    run: async (s) => {
      s.drop.reset();
      const { count, size } = s.drop.stat();
      return { ok: `Maildrop has ${count} messages (${size} octets); none is marked as deleted` };
    },
  },
  NOOP: { states: ['transaction'], run: async () => ({ ok: '' }) },
};

/** The one argument of a command that takes exactly one. */
function one(args: string[], usage: string): string {
  if (args.length !== 1) throw Pop3Error.syntax(usage);
  return args[0]!;
}

export class Pop3Session {
  private state: State = 'authorization';
  /** the inbox USER named, until PASS */
  private user: { address: string; inbox: string; tag: string } | undefined;
  private maildrop: Maildrop | undefined;
  private commands = 0;
  private errors = 0;
  private loginFailures = 0;
  private stopping = false;

  constructor(
    private readonly conn: Pop3Connection,
    private readonly deps: SessionDeps,
  ) {}

  /** The maildrop of a logged-in session (the table lets only TRANSACTION commands ask). */
  get drop(): Maildrop {
    return this.maildrop!;
  }

  /** Greets, then answers commands until the session ends. Never throws. */
  async run(): Promise<void> {
    await this.conn.send(`+OK ${this.deps.hostname} Sluice POP3 server ready`);
    while (!this.stopping) {
      const line = await this.conn.readLine();
      if (line === CLOSED || !(await this.handle(line))) return;
    }
    this.conn.finish(Pop3Error.shuttingDown());
  }

  /** Ends the session for a stop: at once when it waits for a command, else after its current one. */
  shutdown(): void {
    this.stopping = true;
    if (this.conn.waiting) this.conn.finish(Pop3Error.shuttingDown());
  }

  /** Answers one command line; false when the session is over. */
  private async handle(line: string): Promise<boolean> {
    const space = line.indexOf(' ');
    const verb = (space === -1 ? line : line.slice(0, space)).toUpperCase();
    // PASS takes the rest of the line as it is (RFC 1939 §7); other arguments are single words
    const rest = space === -1 ? '' : line.slice(space + 1);
    const args = rest.split(' ').filter(Boolean);
    let reply: Reply;
    try {
      const allowed = COMMANDS_BASE + COMMANDS_PER_MESSAGE * (this.maildrop?.total ?? 0);
      if (++this.commands > allowed) throw Pop3Error.tooManyCommands(allowed);
      const command = Object.hasOwn(COMMANDS, verb) ? COMMANDS[verb] : undefined;
      if (!command) throw Pop3Error.unknownCommand(verb);
      if (!command.states.includes(this.state)) throw Pop3Error.wrongState(verb, this.state === 'transaction');
      reply = await command.run(this, args, rest);
    } catch (err) {
      return this.refuse(err);
    }
    return this.answer(reply);
  }

  private async refuse(err: unknown): Promise<boolean> {
    let refusal: Pop3Error;
    if (err instanceof Pop3Error) {
      refusal = err;
    } else {
      this.deps.logger.warn({ err, ip: this.conn.remoteAddress }, `POP3: a command failed: ${(err as Error)?.message ?? err}`);
      refusal = Pop3Error.storeFailed();
    }
    if (refusal.close) {
      this.conn.finish(refusal);
      return false;
    }
    await this.conn.send(refusal.replyText);
    if (++this.errors >= MAX_ERRORS) {
      this.conn.finish(Pop3Error.tooManyErrors());
      return false;
    }
    return true;
  }

  private async answer(reply: Reply): Promise<boolean> {
    const status = reply.ok ? `+OK ${reply.ok}` : '+OK';
    if (reply.then === 'tls') return this.conn.startTls(this.deps.tls!, status);
    if (reply.lines) {
      await this.conn.send(status, ...multilineText(reply.lines));
    } else if (reply.body) {
      await this.conn.send(status);
      try {
        await this.conn.stream(reply.body);
      } catch (err) {
        // half a message is out: no reply can follow it, the connection ends here
        if (!this.conn.isClosed) this.deps.logger.warn({ err, ip: this.conn.remoteAddress }, `POP3: a transfer failed: ${(err as Error)?.message ?? err}`);
        this.conn.destroy();
        return false;
      }
    } else {
      await this.conn.send(status);
    }
    if (reply.then === 'close') {
      this.conn.finish();
      return false;
    }
    return !this.conn.isClosed;
  }

  // --- AUTHORIZATION -------------------------------------------------------------------------

  /** USER and PASS may be given now: TLS is on, not offered, or not required. */
  private get loginAllowed(): boolean {
    return this.conn.secure || !this.deps.tls || this.deps.config.allowInsecureAuth;
  }

  capabilities(): string[] {
    const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING'];
    if (this.state === 'authorization') {
      if (this.loginAllowed) caps.push('USER');
      if (this.deps.tls && !this.conn.secure) caps.push('STLS');
    }
    caps.push('IMPLEMENTATION Sluice');
    return caps;
  }

  stls(args: string[]): Reply {
    if (args.length) throw Pop3Error.syntax('STLS');
    if (this.conn.secure) throw Pop3Error.alreadyTls();
    if (!this.deps.tls) throw Pop3Error.tlsUnavailable();
    // a USER given in the clear does not carry over into TLS
    this.user = undefined;
    return { ok: 'Begin TLS negotiation now', then: 'tls' };
  }

  userCommand(args: string[]): Reply {
    const address = one(args, 'USER address');
    if (!this.loginAllowed) throw Pop3Error.tlsRequired();
    const found = this.deps.policy.lookup(address);
    if (!found) throw Pop3Error.notAnAddress();
    this.user = { address, ...found };
    return { ok: 'Now PASS with the inbox key' };
  }

  async pass(key: string): Promise<Reply> {
    const user = this.user;
    if (!user) throw Pop3Error.userFirst();
    this.user = undefined;
    const { failures, inbox, config, logger } = this.deps;
    const ip = this.conn.remoteAddress;
    if (failures.blocked(ip)) throw Pop3Error.loginBlocked(failures.until(ip));
    const privates = inbox.privates;
    if (!key || !privates.isPrivate(user.inbox) || !privates.allows(user.inbox, key)) {
      logger.info({ event: 'POP3_LOGIN_FAILED', user: user.address.slice(0, 320), ip }, 'POP3 login failed');
      const count = failures.note(ip);
      if (count === config.maxLoginFailures) {
        const until = new Date(failures.until(ip)).toISOString();
        logger.warn({ event: 'POP3_LOGIN_BLOCKED', ip, failures: count, until }, `${count} failed POP3 logins from ${ip}: its logins are refused until ${until}`);
      }
      // a guess costs the guesser time, and a wrong key takes as long as an inbox that is not private
      await new Promise((resolve) => setTimeout(resolve, config.loginFailureDelay));
      if (++this.loginFailures >= MAX_SESSION_LOGIN_FAILURES) throw Pop3Error.tooManyLoginFailures();
      throw Pop3Error.loginFailed();
    }
    this.maildrop = await Maildrop.load(inbox, user.inbox, { tag: user.tag, cap: this.deps.maxPerInbox });
    this.state = 'transaction';
    const { count, size } = this.maildrop.stat();
    logger.info({ event: 'POP3_LOGIN', inbox: user.inbox, ip, tls: this.conn.secure, messages: count }, `POP3 login to ${user.inbox}`);
    return { ok: `${user.inbox} has ${count} messages (${size} octets)` };
  }

  // --- TRANSACTION ---------------------------------------------------------------------------

  listing(args: string[], usage: string, line: (m: ReturnType<Maildrop['get']>) => string): Reply {
    if (args.length > 1) throw Pop3Error.syntax(usage);
    if (args.length === 1) return { ok: line(this.drop.get(args[0]!)) };
    const { count, size } = this.drop.stat();
    return { ok: `${count} messages (${size} octets)`, lines: this.drop.live().map(line) };
  }

  async retr(args: string[]): Promise<Reply> {
    const m = this.drop.get(one(args, 'RETR n'));
    const raw = await this.deps.inbox.raw(m.id);
    if (!raw) throw Pop3Error.gone(m.n);
    return { ok: `${raw.size} octets`, body: multilineBody(raw.chunks) };
  }

  async top(args: string[]): Promise<Reply> {
    if (args.length !== 2 || !/^\d{1,9}$/.test(args[1]!)) throw Pop3Error.syntax('TOP n lines (lines: 0 or more)');
    const m = this.drop.get(args[0]!);
    const raw = await this.deps.inbox.raw(m.id);
    if (!raw) throw Pop3Error.gone(m.n);
    return { ok: `Top of message ${m.n} follows`, body: multilineBody(topOf(raw.chunks, Number(args[1]))) };
  }

  // --- UPDATE --------------------------------------------------------------------------------

  async quit(): Promise<Reply> {
    if (this.state === 'authorization' || !this.maildrop) return { ok: 'Bye', then: 'close' };
    const marked = this.maildrop.total - this.maildrop.stat().count;
    const { removed, failed } = await this.maildrop.update(this.deps.inbox);
    if (removed.length) {
      this.deps.logger.info({ event: 'POP3_DELETED', inbox: this.maildrop.inbox, ids: removed.slice(0, 100), count: removed.length, ip: this.conn.remoteAddress }, `POP3: ${removed.length} messages left ${this.maildrop.inbox}`);
    }
    if (failed) throw Pop3Error.notAllRemoved(failed, marked);
    return { ok: `Bye; ${removed.length} message${removed.length === 1 ? '' : 's'} deleted`, then: 'close' };
  }
}
