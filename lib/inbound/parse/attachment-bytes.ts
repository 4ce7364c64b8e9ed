/**
 * An attachment's bytes, decoded from the stored raw message when they are asked for. Attachments
 * are not stored a second time: a message is on disk once (half the writes and the disk of a
 * message with large attachments, and nothing more to remove with it), and a download costs one
 * parse of the message up to that part.
 *
 * The parser runs with the options of the parse after the 250 (parser-options.ts), so attachment
 * n here is attachment n of the stored metadata.
 */
import { Readable } from 'node:stream';
import { MailParser, type AttachmentStream, type MessageText } from 'mailparser';
import { PARSER_OPTIONS } from './parser-options.js';

/** The decoded bytes of attachment `index` of the raw message read from `raw`; none if it has no such part. */
export async function* attachmentBytes(raw: AsyncIterable<Buffer>, index: number): AsyncGenerator<Buffer> {
  const parser = new MailParser(PARSER_OPTIONS);
  const source = Readable.from(raw);
  source.once('error', (err) => parser.destroy(err));
  source.pipe(parser);
  let n = 0;
  try {
    for await (const data of parser as AsyncIterable<AttachmentStream | MessageText>) {
      if (data.type !== 'attachment') continue;
      if (n++ === index) {
        yield* data.content as AsyncIterable<Buffer>;
        return;
      }
      for await (const _ of data.content) void _;
      data.release?.();
    }
  } finally {
    source.destroy();
    parser.destroy();
  }
}
