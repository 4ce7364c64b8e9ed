/**
 * Builds a checked /send message into RFC 5322 with nodemailer's MailComposer, and works out its
 * SMTP envelope. The composer runs with file and URL access disabled: a second wall behind the
 * path/href checks, so a refusal from it reaches the client as a 400 too.
 *
 * The envelope: the composer's (from the From/To/Cc/Bcc fields; Bcc never becomes a header),
 * with `envelope.from` and `envelope.to/cc/bcc` replacing their part when given. For `raw` the
 * message is stored as given and the envelope still comes from these fields.
 *
 * MailComposer alone ignores what nodemailer's Mailer adds on top of it; `priority` is applied
 * here the way the Mailer does it. A `date` string becomes a proper RFC 5322 Date header.
 */
import MailComposer from 'nodemailer/lib/mail-composer';
import { SmtpError } from '../errors/smtp-error.js';
import { HttpError } from './errors.js';
import { piecewiseDecoded } from './piecewise-content.js';

type Json = Record<string, unknown>;
type ComposerOptions = ConstructorParameters<typeof MailComposer>[0];
type MimeNode = ReturnType<MailComposer['compile']>;

export interface Composed {
  mail: MimeNode;
  /** envelope sender ('' when none could be found) and recipients, de-duplicated in order */
  from: string;
  to: string[];
}

const PRIORITY_HEADERS: Record<string, [string, string, string]> = {
  high: ['1 (Highest)', 'High', 'High'],
  low: ['5 (Lowest)', 'Low', 'Low'],
};

export function compose(message: Json): Composed {
  // dsn is the envelope's (send-dsn.ts), not the composer's
  const { envelope: envelopeField, priority, dsn: _dsn, ...fields } = message;
  // the composer writes a date string into the header as it is; a Date it formats per RFC 5322
  // (send-checks made sure the string parses)
  if (typeof fields.date === 'string') fields.date = new Date(Date.parse(fields.date));
  if (Array.isArray(fields.attachments)) fields.attachments = fields.attachments.map(withPiecewiseContent);
  let mail: MimeNode;
  let fromHeaders: { from: string | false; to: string[] };
  try {
    mail = new MailComposer({ ...fields, disableFileAccess: true, disableUrlAccess: true } as ComposerOptions).compile();
    const env = mail.getEnvelope();
    fromHeaders = { from: env.from, to: [...env.to] };
  } catch (err) {
    throw HttpError.badRequest(`message could not be built: ${(err as Error).message}`);
  }
  const prio = typeof priority === 'string' ? PRIORITY_HEADERS[priority] : undefined;
  if (prio) {
    mail.setHeader('X-Priority', prio[0]);
    mail.setHeader('X-MSMail-Priority', prio[1]);
    mail.setHeader('Importance', prio[2]);
  }

  let from = fromHeaders.from || '';
  let to = fromHeaders.to;
  if (envelopeField && typeof envelopeField === 'object') {
    const given = envelopeField as Json;
    const env = mail.setEnvelope(given as Parameters<MimeNode['setEnvelope']>[0]).getEnvelope();
    if (given.from !== undefined) from = env.from || '';
    if (given.to !== undefined || given.cc !== undefined || given.bcc !== undefined) to = [...env.to];
  }
  return { mail, from, to: [...new Set(to.filter(Boolean))] };
}

/**
 * An attachment whose large base64 or hex content is handed to the composer as a stream of
 * decoded pieces (piecewise-content.ts). The composer treats the two alike (it decodes `encoding`
 * content before it encodes the part, and labels a message/* part with encoded content 8bit
 * either way), so only the timing changes; a part with a transfer encoding other than the
 * default base64 keeps its string.
 */
function withPiecewiseContent(item: unknown): unknown {
  if (!item || typeof item !== 'object') return item;
  const a = item as Json;
  if (typeof a.content !== 'string' || typeof a.encoding !== 'string') return item;
  if (a.contentTransferEncoding !== undefined && a.contentTransferEncoding !== 'base64') return item;
  const stream = piecewiseDecoded(a.content, a.encoding);
  if (!stream) return item;
  const { encoding: _decoded, ...rest } = a;
  return { ...rest, content: stream };
}

/**
 * The composer's output as ingest's source. A failure while building (a refused file or URL, a
 * bad value deep in a part) is kept as the 400 the client should get, and reaches ingest as an
 * SmtpError so it is logged as a rejection, not as a storage failure.
 */
export class ComposedSource implements AsyncIterable<Buffer> {
  failure: HttpError | undefined;

  constructor(private readonly stream: AsyncIterable<Buffer | string>) {}

  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of this.stream) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const why =
        code === 'EFILEACCESS' || code === 'EURLACCESS'
          ? `content from files or URLs is not allowed (${code})`
          : `message could not be built: ${(err as Error).message}`;
      this.failure = HttpError.badRequest(why);
      throw SmtpError.contentRejected(why);
    }
  }
}
