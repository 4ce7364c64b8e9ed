/**
 * HTTP errors as JSON `{ error, message }`, and the mapping of SMTP-level errors from ingest to
 * HTTP statuses, in one place.
 */
import { SmtpError } from '../errors/smtp-error.js';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
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
