/**
 * POP3 multi-line responses (RFC 1939 §3): every line ends with CRLF, a line that starts with a
 * dot gets one more, and a line holding a single dot ends the response.
 *
 * A message goes out as stored, through nodemailer's SMTP DATA encoder: SMTP's DATA rules are
 * these same rules (bare CR and bare LF become CRLF, dots are doubled, ".\r\n" ends it), and the
 * encoder is a stream, so a message of any size passes chunk by chunk with backpressure.
 */
import { Readable, pipeline } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream.js';

const TERMINATOR = '.';

/**
 * The bytes of a message as a multi-line response body, terminator included. Stopping the
 * iteration early (a client gone) ends the reading of `chunks` too.
 */
export function multilineBody(chunks: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const encoded = new DataStream();
  // pipeline destroys every stage when one fails or the reader stops, which closes the source
  pipeline(Readable.from(chunks, { objectMode: false }), encoded, () => undefined);
  return encoded;
}

/** Short lines (LIST, UIDL, CAPA) as a multi-line response body, terminator included. */
export function multilineText(lines: readonly string[]): string[] {
  return [...lines.map((line) => (line.startsWith('.') ? `.${line}` : line)), TERMINATOR];
}
