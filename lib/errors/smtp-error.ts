/**
 * An SMTP rejection as an error object: basic reply code, enhanced status (RFC 3463) and text.
 * Whoever decides throws one; the SMTP adapter turns it into the reply and the HTTP API into a
 * status. Named factories keep the codes in one place.
 */
export class SmtpError extends Error {
  constructor(
    readonly responseCode: number,
    readonly enhancedStatus: string,
    message: string,
  ) {
    super(message);
    this.name = 'SmtpError';
  }

  get temporary(): boolean {
    return this.responseCode >= 400 && this.responseCode < 500;
  }

  /** The reply line as smtp-server sends it: the enhanced code leads the text. */
  get replyText(): string {
    return `${this.enhancedStatus} ${this.message}`;
  }

  static relayDenied(domain?: string): SmtpError {
    return new SmtpError(550, '5.7.1', domain ? `Relaying to ${domain} denied` : 'Relaying denied');
  }
  static authRequired(): SmtpError {
    return new SmtpError(530, '5.7.0', 'Authentication required');
  }
  static tooManyAuthFailures(): SmtpError {
    return new SmtpError(421, '4.7.0', 'Too many failed logins, closing connection');
  }
  static tooManyAuthFailuresFromAddress(): SmtpError {
    return new SmtpError(421, '4.7.0', 'Too many failed logins from your address, try again later');
  }
  /** The password checks are backed up: nothing is wrong with the credentials (yet). */
  static authBusy(): SmtpError {
    return new SmtpError(454, '4.7.0', 'Temporary authentication failure, try again later');
  }
  static authFailed(): SmtpError {
    return new SmtpError(535, '5.7.8', 'Authentication credentials invalid');
  }
  static encryptionRequired(): SmtpError {
    return new SmtpError(538, '5.7.11', 'Encryption required: issue STARTTLS first');
  }
  static authNotOffered(): SmtpError {
    return new SmtpError(503, '5.5.1', 'Error: authentication not enabled on this connection');
  }
  static messageTooBig(maxSizeBytes: number): SmtpError {
    return new SmtpError(552, '5.3.4', `Message exceeds fixed maximum message size ${maxSizeBytes}`);
  }
  static headersTooBig(maxBytes: number): SmtpError {
    return new SmtpError(552, '5.3.4', `Message header exceeds fixed maximum size ${maxBytes}`);
  }
  static tooManyRecipients(max: number): SmtpError {
    return new SmtpError(452, '4.5.3', `Too many recipients (at most ${max} per message)`);
  }
  static badAddress(address: string, why: string): SmtpError {
    return new SmtpError(553, '5.1.3', `Invalid address ${JSON.stringify(address.slice(0, 256))}: ${why}`);
  }
  static noRecipients(): SmtpError {
    return new SmtpError(503, '5.5.1', 'Error: need RCPT command');
  }
  /** The message itself could not be built or read (a /send body the composer refused). */
  static contentRejected(why: string): SmtpError {
    return new SmtpError(554, '5.6.0', `Message content rejected: ${why.replace(/[\r\n]+/g, ' ').slice(0, 300)}`);
  }
  /** More hops than a message takes on any sane path: it is going round in circles. */
  static mailLoop(received: number): SmtpError {
    return new SmtpError(554, '5.4.6', `Too many hops (${received} Received headers): mail loop detected`);
  }
  static unknownZone(zone: string): SmtpError {
    return new SmtpError(550, '5.7.1', `Unknown sending zone ${JSON.stringify(zone.slice(0, 64))}`);
  }
  static storageFailed(): SmtpError {
    return new SmtpError(451, '4.3.0', 'Error: queue storage failed, try again later');
  }
  static insufficientStorage(): SmtpError {
    return new SmtpError(452, '4.3.1', 'Insufficient system storage, try again later');
  }
  static hookFailed(): SmtpError {
    return new SmtpError(451, '4.3.0', 'Error: temporary local problem, try again later');
  }
  static shuttingDown(): SmtpError {
    return new SmtpError(421, '4.3.2', 'Service shutting down, try again later');
  }
  static tooManyConnections(): SmtpError {
    return new SmtpError(421, '4.7.0', 'Too many connections from your address, try again later');
  }
  static timeout(what: string): SmtpError {
    return new SmtpError(421, '4.4.2', `${what} timed out, closing connection`);
  }
  /** A local part that names another route (%, !, a quoted "@"): never stored, never forwarded. */
  static routedAddress(): SmtpError {
    return new SmtpError(550, '5.7.1', 'Source-routed addresses (%, !, a quoted "@") are not accepted here');
  }
  /** On the blocklist: the text says which entry, so a legitimate sender knows what to ask about. */
  static blocklisted(why: string): SmtpError {
    return new SmtpError(554, '5.7.1', why.replace(/[\r\n]+/g, ' ').slice(0, 300));
  }
  /** A rate limit per client was passed; `what` names it ("messages per minute from your address"). */
  static rateLimited(what: string): SmtpError {
    return new SmtpError(421, '4.7.0', `Too many ${what}, try again later`);
  }
  /** One inbox takes too much mail; its other recipients in the transaction are not affected. */
  static inboxRateLimited(inbox: string): SmtpError {
    return new SmtpError(450, '4.2.1', `The inbox ${inbox.slice(0, 320)} is receiving mail too fast, try again later`);
  }
  static overloaded(): SmtpError {
    return new SmtpError(421, '4.3.2', 'Server busy, try again later');
  }
  static tooManyJunkCommands(): SmtpError {
    return new SmtpError(421, '4.7.0', 'Too many commands that send no mail, closing connection');
  }
  /** A full server sheds the connection that has done nothing for the longest. */
  static shedIdle(): SmtpError {
    return new SmtpError(421, '4.4.2', 'Server busy and this connection idle, closing it');
  }
  static tooManyErrors(): SmtpError {
    return new SmtpError(421, '4.7.0', 'Too many errors in this session, closing connection');
  }
}

/** Anything thrown with a numeric `responseCode` (a plugin's own Error, say) as an SmtpError. */
export function asSmtpError(err: unknown, fallback: () => SmtpError): SmtpError {
  if (err instanceof SmtpError) return err;
  const e = err as { responseCode?: unknown; message?: unknown; enhancedStatus?: unknown } | null;
  if (e && typeof e.responseCode === 'number' && e.responseCode >= 400 && e.responseCode < 600) {
    const code = e.responseCode;
    const enhanced =
      typeof e.enhancedStatus === 'string' && /^[245]\.\d{1,3}\.\d{1,3}$/.test(e.enhancedStatus)
        ? e.enhancedStatus
        : code >= 500
          ? '5.0.0'
          : '4.0.0';
    const text = typeof e.message === 'string' && e.message ? e.message.replace(/[\r\n]+/g, ' ') : 'Rejected';
    return new SmtpError(code, enhanced, text);
  }
  return fallback();
}

/** What smtp-server turns into a reply: `responseCode` and the whole reply text as the message
 * (SmtpError keeps the enhanced status apart; the server wants it in the text). */
export class SmtpReply extends Error {
  constructor(
    readonly responseCode: number,
    text: string,
  ) {
    super(text);
    this.name = 'SmtpReply';
  }

  static of(err: SmtpError): SmtpReply {
    return new SmtpReply(err.responseCode, err.replyText);
  }
}
