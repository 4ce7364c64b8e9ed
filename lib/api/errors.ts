/**
 * HTTP errors as JSON `{ error, message }`, and the mapping of SMTP-level errors from ingest to
 * HTTP statuses, in one place.
 */
import { SmtpError } from '../errors/smtp-error.js';

/**
 * The catalogue of the `error` names of HTTP replies, with the status each goes with. Clients
 * match on the name; README's "HTTP API" error table lists them all (a test keeps the two in
 * step, and checks that no reply uses a name that is not here).
 */
export const HTTP_ERRORS = {
  BadRequest: { status: 400, meaning: 'the request is malformed or asks for something impossible' },
  ValidationError: { status: 400, meaning: 'a field failed the route\'s schema; the message names the field' },
  Rejected: { status: 400, meaning: 'the message was refused as SMTP would refuse it (a hook, a policy, a bad address)' },
  Unauthorized: { status: 401, meaning: 'api.token is set and the request did not carry it' },
  NotFound: { status: 404, meaning: 'no such route, message, row or inbox' },
  Conflict: { status: 409, meaning: 'the row is being delivered right now, or is held; try again when the attempt is over (or release it)' },
  PayloadTooLarge: { status: 413, meaning: 'the request body is over api.maxBodySize' },
  MessageTooLarge: { status: 413, meaning: 'the message is over smtp.maxSize' },
  UnsupportedMediaType: { status: 415, meaning: 'the route does not take this Content-Type' },
  TooManyRequests: { status: 429, meaning: 'a rate limit was reached; retry after a moment' },
  InternalError: { status: 500, meaning: 'a fault of Sluice; the log has the details' },
  TemporaryFailure: { status: 503, meaning: 'shutting down, the store is recovering, or a temporary refusal: retry' },
  InsufficientStorage: { status: 507, meaning: 'the disk is too full to take the message' },
} as const;

export type HttpErrorName = keyof typeof HTTP_ERRORS;

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: HttpErrorName,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
  /** The JSON body of the reply. */
  static body(error: HttpErrorName, message: string): { error: HttpErrorName; message: string } {
    return { error, message };
  }
  static badRequest(message: string): HttpError {
    return new HttpError(400, 'BadRequest', message);
  }
  static notFound(message: string): HttpError {
    return new HttpError(404, 'NotFound', message);
  }
  static shuttingDown(): HttpError {
    return new HttpError(503, 'TemporaryFailure', 'Sluice is shutting down; try again in a moment');
  }
  static storeRecovering(): HttpError {
    return new HttpError(503, 'TemporaryFailure', 'The store is recovering from a failed write; try again in a moment');
  }
  static queueCounting(rowsSoFar: number): HttpError {
    return new HttpError(503, 'TemporaryFailure', `The queue is still being counted after the start (${rowsSoFar} rows so far); try again in a moment`);
  }
  static unauthorized(): HttpError {
    return new HttpError(401, 'Unauthorized', 'A valid API token is required (Authorization: Bearer …)');
  }
}

/** What ingest's SMTP reply means to an HTTP client. */
export function httpFromSmtp(err: SmtpError): HttpError {
  const text = err.message;
  if (err.responseCode === 552) return new HttpError(413, 'MessageTooLarge', text);
  if (err.enhancedStatus === '4.3.1') return new HttpError(507, 'InsufficientStorage', text);
  if (err.responseCode === 421 || err.responseCode === 451) return new HttpError(503, 'TemporaryFailure', text);
  if (err.temporary) return new HttpError(503, 'TemporaryFailure', text);
  return new HttpError(400, 'Rejected', `${err.responseCode} ${err.enhancedStatus} ${text}`);
}
