/**
 * A raw RFC 822 message arriving as a stream (POST /send-raw): its header block is read first,
 * so that the envelope can be taken from its headers, and the whole message is then handed on as
 * a source for ingest() without ever being held in memory beyond the header block.
 *
 * The envelope follows the headers the way a mail client's would: the sender is the From address
 * (the Sender address when From has none), the recipients are To, Cc and Bcc. Bcc lines are taken
 * out of the message: they name recipients the others must not see.
 */
import type { Readable } from 'node:stream';
import addressparser from 'nodemailer/lib/addressparser';
import { readChunks } from '../accept/read-chunks.js';
import { SmtpError } from '../errors/smtp-error.js';
import { HeaderSplitter, HeaderTooLargeError } from '../message/header-split.js';
import { parseHeaders, type MessageHeaders } from '../message/headers.js';
import { createLineEndNormalizer } from '../message/line-ends.js';

export interface RawMessage {
  headers: MessageHeaders;
  /** envelope sender from From (or Sender); '' when neither names an address */
  from: string;
  /** To, Cc and Bcc addresses, de-duplicated in order */
  to: string[];
  /** the message with the Bcc lines removed: the header block, then every body byte as it comes */
  source: AsyncIterable<Buffer>;
  /** reads the rest of the upload and throws it away (a refusal: the client still gets its reply) */
  discard(): Promise<void>;
}

/**
 * Reads `stream` up to the end of its header block (at most maxHeaderBytes: more is the SMTP
 * 552 a too-large header gets), and returns the rest as a source to go on with.
 */
export async function readRawMessage(stream: Readable, maxHeaderBytes: number): Promise<RawMessage> {
  const chunks = bytesOf(readChunks(stream))[Symbol.asyncIterator]();
  const normalizer = createLineEndNormalizer();
  const splitter = new HeaderSplitter(maxHeaderBytes);
  let firstBody: Buffer = Buffer.alloc(0);
  let ended = false;
  try {
    while (!splitter.done) {
      const next = await chunks.next();
      if (next.done) {
        ended = true;
        firstBody = splitter.push(normalizer.end());
        splitter.finish();
        break;
      }
      firstBody = splitter.push(normalizer.push(next.value));
    }
  } catch (err) {
    // read the rest so the client's upload ends and it gets the reply
    void drain(chunks);
    throw err instanceof HeaderTooLargeError ? SmtpError.headersTooBig(maxHeaderBytes) : err;
  }

  const headers = parseHeaders(splitter.headerBlock);
  const from = addressesOf(headers, 'from')[0] ?? addressesOf(headers, 'sender')[0] ?? '';
  const to = [...new Set(['to', 'cc', 'bcc'].flatMap((key) => addressesOf(headers, key)))];
  headers.remove('bcc');

  async function* rest(): AsyncGenerator<Buffer> {
    yield headers.build();
    if (firstBody.length) yield firstBody;
    if (ended) return;
    // the same normaliser on: it may hold a CR from the chunk that ended the header block
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield normalizer.push(next.value);
    yield normalizer.end();
  }
  return { headers, from, to, source: rest(), discard: () => drain(chunks) };
}

/** The addresses a header names (groups flattened), without display names. */
function addressesOf(headers: MessageHeaders, key: string): string[] {
  return headers
    .get(key)
    .map((line) => line.slice(line.indexOf(':') + 1))
    .flatMap((value) => addressparser(value.replace(/\r?\n[ \t]/g, ' '), { flatten: true }))
    .map((a) => a.address.trim())
    .filter(Boolean);
}

async function* bytesOf(source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
  for await (const chunk of source) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
}

async function drain(chunks: AsyncIterator<Buffer>): Promise<void> {
  try {
    while (!(await chunks.next()).done);
  } catch {
    // the client went away: nothing to answer
  }
}
