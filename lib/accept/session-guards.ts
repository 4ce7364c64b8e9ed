/**
 * Limits on one SMTP session that smtp-server leaves to the application, shared by every SMTP
 * door (submission and the inbound receiver):
 *
 * - deadlines the idle timeout cannot give: a command line must be complete within
 *   commandTimeout, a DATA transfer within dataTimeout, a session within sessionTimeout, so a
 *   client trickling one byte at a time cannot hold a connection for hours (421 4.4.2);
 * - commands that send no mail (NOOP, RSET, VRFY, EXPN, HELP) are limited between two MAIL
 *   commands, as Postfix's smtpd_junk_command_limit does (421 4.7.0);
 * - failed commands (5xx replies) are limited per session, as Postfix's smtpd_hard_error_limit
 *   does (421 4.7.0);
 * - the time of the session's last progress (a complete command line, or 8 KB of a message) is
 *   kept, so a full server can shed the connection that has done nothing for the longest.
 *
 * Each works on the connection's parser and on every parser it makes later: STARTTLS retires the
 * parser and makes a new one for the TLS session, and the limits hold inside TLS too.
 */
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import { SmtpError } from '../errors/smtp-error.js';

export interface SessionLimits {
  commandTimeoutMs: number;
  dataTimeoutMs: number;
  sessionTimeoutMs: number;
  /** NOOP, RSET, VRFY, EXPN, HELP allowed between two MAIL commands */
  maxJunkCommands: number;
  /** 5xx replies allowed in one session */
  maxBadCommands: number;
}

/** Junk commands allowed between two MAIL commands: Postfix's default. */
export const JUNK_COMMAND_LIMIT = 100;
/** Commands that never send mail (what Postfix counts as junk). */
const JUNK = new Set(['NOOP', 'RSET', 'VRFY', 'EXPN', 'HELP']);
/** Bytes of a message that count as progress, for the shedding of idle connections. */
const DATA_PROGRESS_BYTES = 8 * 1024;

export interface SessionWatch {
  /** when the session last made progress (ms) */
  readonly lastProgress: number;
  clear(): void;
}

/** Arms every limit on a new connection. */
export function guardSession(connection: SMTPConnection, limits: SessionLimits): SessionWatch {
  const state = { lastProgress: Date.now() };
  const deadlines = armDeadlines(connection, limits, () => (state.lastProgress = Date.now()));
  limitJunk(connection, limits.maxJunkCommands);
  limitFailures(connection, limits.maxBadCommands);
  return {
    get lastProgress() {
      return state.lastProgress;
    },
    clear: () => deadlines.clear(),
  };
}

/** Runs `fn` on the connection's parser and on every parser it makes later. */
export function onEveryParser(connection: SMTPConnection, fn: (parser: SMTPStream) => void): void {
  if (connection._parser) fn(connection._parser);
  const createParser = connection._createParser.bind(connection);
  connection._createParser = () => {
    const parser = createParser();
    fn(parser);
    return parser;
  };
}

/** Ends a session with a 421 (the reply closes the connection). */
function close421(connection: SMTPConnection, err: SmtpError): void {
  if (connection._closed || connection._closing) return;
  connection.send(421, err.replyText, false);
}

/**
 * Watches the bytes the connection's parsers receive and closes the connection with 421 when a
 * deadline passes; tells `progress` of every complete command line and every 8 KB of a message.
 */
function armDeadlines(connection: SMTPConnection, limits: SessionLimits, progress: () => void): { clear(): void } {
  let lineTimer: NodeJS.Timeout | undefined;
  let dataTimer: NodeJS.Timeout | undefined;
  let dataBytes = 0;
  const expire = (what: string) => () => close421(connection, SmtpError.timeout(what));
  const sessionTimer = setTimeout(expire('Session'), limits.sessionTimeoutMs);
  sessionTimer.unref();

  const watch = (parser: SMTPStream): void => {
    const write = parser.write.bind(parser) as (...args: unknown[]) => boolean;
    parser.write = ((chunk: Buffer, ...rest: unknown[]) => {
      if (parser._dataMode) {
        clearTimeout(lineTimer);
        lineTimer = undefined;
        dataBytes += chunk.length;
        if (dataBytes >= DATA_PROGRESS_BYTES) {
          dataBytes = 0;
          progress();
        }
        if (!dataTimer) {
          dataTimer = setTimeout(expire('Data transfer'), limits.dataTimeoutMs);
          dataTimer.unref();
          parser._dataStream?.once('end', () => {
            clearTimeout(dataTimer);
            dataTimer = undefined;
            progress();
          });
        }
      } else if (Buffer.isBuffer(chunk)) {
        if (chunk.includes(0x0a)) progress();
        if (chunk[chunk.length - 1] === 0x0a) {
          clearTimeout(lineTimer);
          lineTimer = undefined;
        } else if (!lineTimer || chunk.includes(0x0a)) {
          // a new partial line starts its own deadline
          clearTimeout(lineTimer);
          lineTimer = setTimeout(expire('Command'), limits.commandTimeoutMs);
          lineTimer.unref();
        }
      }
      return write(chunk, ...rest);
    }) as typeof parser.write;
  };

  onEveryParser(connection, watch);
  return {
    clear() {
      clearTimeout(sessionTimer);
      clearTimeout(lineTimer);
      clearTimeout(dataTimer);
    },
  };
}

/** Counts junk commands since the last MAIL; one over the limit ends the session. */
function limitJunk(connection: SMTPConnection, max: number): void {
  let junk = 0;
  const onCommand = connection._onCommand.bind(connection);
  connection._onCommand = (command, callback) => {
    const verb = /^\s*([A-Za-z]+)/.exec(command.subarray(0, 16).toString('latin1'))?.[1]?.toUpperCase() ?? '';
    if (verb === 'MAIL') junk = 0;
    else if (connection._ready && !connection._nextHandler && JUNK.has(verb) && ++junk > max) {
      close421(connection, SmtpError.tooManyJunkCommands());
      return callback?.();
    }
    return onCommand(command, callback);
  };
}

/** Counts 5xx replies; at the limit the session ends with 421 after that reply. */
function limitFailures(connection: SMTPConnection, max: number): void {
  let failures = 0;
  const send = connection.send.bind(connection);
  connection.send = (code, data, context) => {
    send(code, data, context);
    if (code >= 500 && ++failures >= max) close421(connection, SmtpError.tooManyErrors());
  };
}
