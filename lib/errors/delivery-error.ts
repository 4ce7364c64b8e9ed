/**
 * The one error a delivery attempt fails with: what the SMTP client (lib/deliver/smtp-client.ts)
 * rejects with, and what deliver-job builds for a host it did not try (a TLS rule refused it, a
 * plugin refused the connection, its circuit is open). The failure policy
 * (lib/deliver/failure-policy.ts) reads these fields and nothing else; no one parses the message.
 *
 * Invariants:
 * - `phase` is the SMTP step that failed, set once by whoever built the error; `connected` says
 *   whether the session got past greeting, EHLO and STARTTLS, `dataSent` whether the whole
 *   message had been handed over (so a reply lost after it may mean the message arrived).
 * - Fields are read-only: the client builds a new error with what the session knew when it failed.
 */

/** The SMTP steps, in the order a session goes through them. CONN covers connect and greeting;
 * DOT is the wait for the reply to the final dot; CLIENT is a call the client refused itself
 * before any command went out (a dead connection, an empty message). */
export const SMTP_PHASES = ['CONN', 'EHLO', 'STARTTLS', 'AUTH', 'MAIL', 'RCPT', 'DATA', 'DOT', 'RSET', 'CLIENT'] as const;
export type SmtpPhase = (typeof SMTP_PHASES)[number];

/** One recipient the server refused, with its own reply. */
export interface RecipientReply {
  recipient: string;
  responseCode?: number;
  response: string;
}

export interface DeliveryErrorFields {
  /** ECONNECTION, ETIMEDOUT, ESOCKET, ETLS, EPROTOCOL, EENVELOPE, EMESSAGE, EAUTH, EREQUIRETLS
   * (nodemailer's codes, which our own errors use too) */
  code: string;
  phase?: SmtpPhase;
  /** the system or TLS code under `code` (ECONNREFUSED, DEPTH_ZERO_SELF_SIGNED_CERT, or ours:
   * DANE_MISMATCH, DANE_LOOKUP, MTA_STS_MX) */
  originalCode?: string;
  responseCode?: number;
  /** the server's reply, multi-line replies joined with '\n' */
  response?: string;
  connected?: boolean;
  dataSent?: boolean;
  tls?: boolean;
  /** a pooled session that turned out to be dead before anything of this message was said */
  staleSession?: boolean;
  /** per-recipient refusals when every recipient was refused (code EENVELOPE) */
  rejected?: readonly RecipientReply[];
}

export class DeliveryError extends Error {
  readonly code: string;
  readonly phase: SmtpPhase;
  readonly originalCode: string | undefined;
  readonly responseCode: number | undefined;
  readonly response: string | undefined;
  readonly connected: boolean;
  readonly dataSent: boolean;
  readonly tls: boolean;
  readonly staleSession: boolean;
  readonly rejected: readonly RecipientReply[];

  constructor(message: string, fields: DeliveryErrorFields, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DeliveryError';
    this.code = fields.code;
    this.phase = fields.phase ?? 'CONN';
    this.originalCode = fields.originalCode;
    this.responseCode = fields.responseCode;
    this.response = fields.response;
    this.connected = fields.connected ?? false;
    this.dataSent = fields.dataSent ?? false;
    this.tls = fields.tls ?? false;
    this.staleSession = fields.staleSession ?? false;
    this.rejected = fields.rejected ?? [];
  }

  /** A host we did not connect to, or could not reach (the connection never got going). */
  static unreachable(message: string): DeliveryError {
    return new DeliveryError(message, { code: 'ECONNECTION', phase: 'CONN' });
  }

  /** A host the TLS rules refuse before or after STARTTLS (DANE, MTA-STS, TLS required). */
  static tlsRefused(message: string, originalCode?: string, state: { connected?: boolean; tls?: boolean } = {}): DeliveryError {
    return new DeliveryError(message, { code: 'ETLS', phase: 'STARTTLS', ...(originalCode ? { originalCode } : {}), ...state });
  }

  /** The same failure with what the session knew when it happened. */
  with(state: Pick<DeliveryErrorFields, 'connected' | 'dataSent' | 'tls' | 'staleSession'>): DeliveryError {
    return new DeliveryError(this.message, { ...this.fields(), ...state }, { cause: this.cause });
  }

  private fields(): DeliveryErrorFields {
    return {
      code: this.code,
      phase: this.phase,
      originalCode: this.originalCode,
      responseCode: this.responseCode,
      response: this.response,
      connected: this.connected,
      dataSent: this.dataSent,
      tls: this.tls,
      staleSession: this.staleSession,
      rejected: this.rejected,
    };
  }
}
