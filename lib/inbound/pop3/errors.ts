/**
 * A POP3 refusal as an error object: the text after "-ERR", with the RFC 2449 / RFC 3206
 * response code in brackets when one applies, and whether the session ends after it. Whoever
 * decides throws one; the session turns it into the reply line in one place. Named factories keep
 * every refusal's wording here.
 */

/** The response codes we use (RFC 3206), announced by CAPA as RESP-CODES and AUTH-RESP-CODE. */
export type Pop3ResponseCode = 'AUTH' | 'SYS/TEMP' | 'SYS/PERM';

export class Pop3Error extends Error {
  constructor(
    message: string,
    readonly code?: Pop3ResponseCode,
    /** the session closes after this reply */
    readonly close = false,
  ) {
    super(message);
    this.name = 'Pop3Error';
  }

  /** The reply line without its CRLF. */
  get replyText(): string {
    return `-ERR ${this.code ? `[${this.code}] ` : ''}${this.message}`;
  }

  // --- commands and arguments ----------------------------------------------------------------

  static unknownCommand(verb: string): Pop3Error {
    return new Pop3Error(`Unknown command ${JSON.stringify(verb.slice(0, 16))}; CAPA lists what this server does`);
  }
  static wrongState(verb: string, loggedIn: boolean): Pop3Error {
    return new Pop3Error(loggedIn ? `${verb} is not allowed after login` : `${verb} needs a login first (USER, then PASS)`);
  }
  static syntax(usage: string): Pop3Error {
    return new Pop3Error(`Syntax: ${usage}`);
  }
  static noSuchMessage(n: string, count: number): Pop3Error {
    return new Pop3Error(`No message ${JSON.stringify(n.slice(0, 16))}: ${count ? `the maildrop has messages 1 to ${count}` : 'the maildrop is empty'}`);
  }
  static deleted(n: number): Pop3Error {
    return new Pop3Error(`Message ${n} is marked as deleted (RSET unmarks it)`);
  }
  static gone(n: number): Pop3Error {
    return new Pop3Error(`Message ${n} is no longer in the inbox (deleted or expired since login)`, 'SYS/PERM');
  }
  static lineTooLong(maxBytes: number): Pop3Error {
    return new Pop3Error(`Command line longer than ${maxBytes} bytes; closing`, undefined, true);
  }
  static tooManyErrors(): Pop3Error {
    return new Pop3Error('Too many failed commands; closing', undefined, true);
  }
  static tooManyCommands(max: number): Pop3Error {
    return new Pop3Error(`More than ${max} commands in one session; closing (nothing was deleted)`, undefined, true);
  }

  // --- login ---------------------------------------------------------------------------------

  static notAnAddress(): Pop3Error {
    return new Pop3Error('USER takes the address of a private inbox, like USER qa@sluice.test');
  }
  static userFirst(): Pop3Error {
    return new Pop3Error('PASS must follow USER');
  }
  /** The one answer for an inbox that is not private and for a wrong key: neither is told apart. */
  static loginFailed(): Pop3Error {
    return new Pop3Error('Wrong address or key: POP3 serves private inboxes, with the key from POST /api/private as the password', 'AUTH');
  }
  static tooManyLoginFailures(): Pop3Error {
    return new Pop3Error('Too many failed logins on this connection; closing', 'AUTH', true);
  }
  static loginBlocked(untilMs: number): Pop3Error {
    const minutes = Math.max(1, Math.ceil((untilMs - Date.now()) / 60_000));
    return new Pop3Error(`Too many failed logins from your address; try again in ${minutes} minute${minutes === 1 ? '' : 's'}`, 'SYS/TEMP', true);
  }
  static tlsRequired(): Pop3Error {
    return new Pop3Error('Issue STLS first: logins are refused without TLS here', 'AUTH');
  }
  static alreadyTls(): Pop3Error {
    return new Pop3Error('TLS is already active');
  }
  static tlsUnavailable(): Pop3Error {
    return new Pop3Error('STLS is not offered: no TLS key and certificate are configured');
  }

  // --- the server ----------------------------------------------------------------------------

  static storeFailed(): Pop3Error {
    return new Pop3Error('The inbox store could not be read; try again later', 'SYS/TEMP');
  }
  static notAllRemoved(failed: number, marked: number): Pop3Error {
    return new Pop3Error(`Some deleted messages not removed (${failed} of ${marked}); they stay in the inbox`, 'SYS/TEMP', true);
  }
  static tooManyConnections(): Pop3Error {
    return new Pop3Error('Too many connections from your address; try again later', 'SYS/TEMP', true);
  }
  static serverFull(): Pop3Error {
    return new Pop3Error('Too many connected clients; try again in a moment', 'SYS/TEMP', true);
  }
  static shuttingDown(): Pop3Error {
    return new Pop3Error('Sluice is shutting down; nothing was deleted, try again later', 'SYS/TEMP', true);
  }
  static timeout(what: string, limitMs: number): Pop3Error {
    return new Pop3Error(`${what} took longer than ${formatMs(limitMs)}; closing (nothing was deleted)`, undefined, true);
  }
}

function formatMs(ms: number): string {
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}
