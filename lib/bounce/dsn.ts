/**
 * Builds a delivery status notification (RFC 3464) for one message: a multipart/report
 * (RFC 6522, report-type=delivery-status) with
 *   1. text/plain: what failed, is delayed or was relayed (a NOTIFY=SUCCESS notice), for whom,
 *      what the remote server said, and for a delay until when we keep trying;
 *   2. message/delivery-status: the per-message fields (Original-Envelope-Id, Reporting-MTA,
 *      Arrival-Date, X-Sluice-Queue-ID) and one block per recipient (Final-Recipient, Action,
 *      Status — the real enhanced status, not a blanket 5.0.0 — Remote-MTA, Diagnostic-Code,
 *      Last-Attempt-Date, Will-Retry-Until);
 *   3. text/rfc822-headers: the headers of the original message.
 * The DSN goes to the original envelope sender with a null envelope sender of its own, so that it
 * can never be bounced in turn; the lead queues it through the one ingest path. Whether a DSN may
 * be sent at all is mayBounceTo's question (loop-guard.ts), asked before this.
 *
 * Invariants of the output: CRLF line ends only, no line over 998 octets, and nothing taken from
 * outside (remote replies, host names, addresses, original headers) can add a header or a MIME
 * part: values are cleaned to one line and folded (dsn-fields.ts), and the boundary is random
 * and checked against the content.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { firstValue, parseHeaders, rfc5322Date } from '../message/headers.js';
import { readReply } from './reply-text.js';
import { MAX_LINE_OCTETS, address, asciiLine, foldField, textLine, token, wrapText, xtext } from './dsn-fields.js';

export { mayBounceTo } from './loop-guard.js';

export interface DsnRecipient {
  recipient: string;
  /** relayed: accepted by a server that was not asked to report further (a NOTIFY=SUCCESS notice) */
  action: 'failed' | 'delayed' | 'relayed';
  /** the enhanced status, e.g. '5.1.1' (ReplyClass.status) */
  status: string;
  /** the host that gave the reply */
  remoteMta?: string;
  /** the remote reply, e.g. '550 5.1.1 <x@y.test>: user unknown', or our own error text */
  diagnostic?: string;
  /** ms since the epoch */
  lastAttempt?: number;
  /** ms since the epoch; shown for 'delayed' */
  willRetryUntil?: number;
  /** the ORCPT the client gave ("addr-type;address", xtext decoded), when it gave one */
  originalRecipient?: string;
  /** short human reason (ReplyClass.message), shown in the text part */
  reason?: string;
}

export interface DsnInput {
  /** our hostname */
  reportingMta: string;
  queueId: string;
  /** ms since the epoch */
  arrivalDate: number;
  /** envelope sender of the original */
  sender: string;
  /** the stored header block, latin1 */
  originalHeaders: string;
  recipients: DsnRecipient[];
  now?: Date;
  /** the ENVID the client gave with MAIL FROM (RFC 3461), when it gave one */
  envelopeId?: string;
}

/** The header part is cut (at a line end) past this: a DSN is a notice, not a copy. */
const MAX_HEADER_PART_OCTETS = 64 * 1024;

export function buildDsn(input: DsnInput): { from: ''; to: string[]; message: Buffer } {
  const sender = address(input.sender.trim().replace(/^<(.*)>$/, '$1'));
  if (!sender) throw new Error('buildDsn: no DSN to the null sender (check mayBounceTo first)');
  if (!input.recipients.length) throw new Error('buildDsn: no recipients to report on');
  const host = token(input.reportingMta);
  const now = input.now ?? new Date();
  const failed = input.recipients.some((r) => r.action === 'failed');
  const delayed = input.recipients.some((r) => r.action === 'delayed');

  const original = parseHeaders(Buffer.from(headerBlock(input.originalHeaders), 'latin1'));
  const parts = {
    text: Buffer.from(humanText(input, host, original), 'utf8'),
    status: Buffer.from(deliveryStatus(input, host), 'latin1'),
    headers: Buffer.from(headerPart(input.originalHeaders), 'latin1'),
  };
  const boundary = pickBoundary(Object.values(parts));
  const originalId = /<[^<>\s]{1,250}>/.exec(original.getFirst('message-id'))?.[0];

  const head = [
    `From: "Mail Delivery Subsystem" <MAILER-DAEMON@${host}>`,
    `To: <${sender}>`,
    `Subject: Delivery Status Notification (${failed ? 'Failure' : delayed ? 'Delay' : 'Relayed'})`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: <${randomUUID()}@${host}>`,
    ...(originalId ? [`In-Reply-To: ${originalId}`, `References: ${originalId}`] : []),
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n boundary="${boundary}"`,
  ].join('\r\n');

  const message = Buffer.concat([
    Buffer.from(`${head}\r\n\r\nThis is a MIME-formatted delivery status notification.\r\n`, 'utf8'),
    partHead(boundary, ['Content-Type: text/plain; charset=utf-8', `Content-Transfer-Encoding: ${encodingOf(parts.text)}`, 'Content-Description: Notification']),
    parts.text,
    partHead(boundary, ['Content-Type: message/delivery-status', 'Content-Description: Delivery report']),
    parts.status,
    partHead(boundary, ['Content-Type: text/rfc822-headers', `Content-Transfer-Encoding: ${encodingOf(parts.headers)}`, 'Content-Description: Headers of the undelivered message']),
    parts.headers,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'ascii'),
  ]);
  return { from: '', to: [sender], message };
}

function partHead(boundary: string, lines: string[]): Buffer {
  return Buffer.from(`\r\n--${boundary}\r\n${lines.join('\r\n')}\r\n\r\n`, 'ascii');
}

const encodingOf = (part: Buffer) => (part.some((b) => b > 0x7f) ? '8bit' : '7bit');

/** A boundary that occurs in no part (RFC 2046 §5.1.1); random, so the loop ends at once. */
function pickBoundary(parts: Buffer[]): string {
  for (;;) {
    const boundary = `=_sluice-dsn-${randomBytes(12).toString('hex')}`;
    if (!parts.some((p) => p.includes(boundary))) return boundary;
  }
}

/** Part 1: for the person who sent the message. */
function humanText(input: DsnInput, host: string, original: ReturnType<typeof parseHeaders>): string {
  const out: string[] = [`This is the mail system at ${host}.`, ''];
  const failed = input.recipients.filter((r) => r.action === 'failed');
  const delayed = input.recipients.filter((r) => r.action === 'delayed');
  const relayed = input.recipients.filter((r) => r.action === 'relayed');
  if (failed.length) {
    out.push(
      ...wrapText(
        `Your message could not be delivered to the ${failed.length === 1 ? 'recipient' : 'recipients'} below. ` +
          'The failure is permanent: the message will not be sent again.',
      ),
      '',
      ...failed.flatMap(recipientText),
    );
  }
  if (delayed.length) {
    const until = Math.max(0, ...delayed.map((r) => r.willRetryUntil ?? 0));
    out.push(
      ...wrapText(
        `Your message has not been delivered yet to the ${delayed.length === 1 ? 'recipient' : 'recipients'} below. ` +
          `It is not lost: we keep trying${until ? ` until ${rfc5322Date(new Date(until))}` : ''}, ` +
          'and will write again if we have to give up. You do not need to send it again.',
      ),
      '',
      ...delayed.flatMap(recipientText),
    );
  }
  if (relayed.length) {
    out.push(
      ...wrapText(
        `Your message was accepted by the mail server of the ${relayed.length === 1 ? 'recipient' : 'recipients'} below, ` +
          'and you asked to be told (NOTIFY=SUCCESS). That server was not asked to report further, so this is the last notice about it.',
      ),
      '',
      ...relayed.flatMap(recipientText),
    );
  }
  const subject = textLine(firstValue(original, 'subject'), 200);
  out.push(
    ...wrapText(
      `Your message was received on ${rfc5322Date(new Date(input.arrivalDate))} as queue id ${token(input.queueId)}` +
        `${subject ? `, subject "${subject}"` : ''}. The delivery report and the headers of your message are attached.`,
    ),
  );
  return `${out.join('\r\n')}\r\n`;
}

function recipientText(r: DsnRecipient): string[] {
  const lines = [`<${textLine(r.recipient, 200)}>`];
  const reason = textLine(r.reason ?? '', 200);
  lines.push(...wrapText(`${reason ? `${reason} ` : ''}(status ${statusCode(r)})`, 76, '    '));
  if (r.diagnostic) {
    const said = r.remoteMta ? `${token(r.remoteMta)} said:` : 'The error was:';
    lines.push(...wrapText(`${said} ${textLine(oneLine(r.diagnostic))}`, 76, '    '));
  } else if (r.remoteMta) {
    lines.push(...wrapText(`while talking to ${token(r.remoteMta)}`, 76, '    '));
  }
  if (r.action === 'delayed' && r.willRetryUntil) lines.push(`    We will keep trying until ${rfc5322Date(new Date(r.willRetryUntil))}.`);
  lines.push('');
  return lines;
}

/** Part 2: the machine-readable report (RFC 3464 §2.2, §2.3), US-ASCII only. */
function deliveryStatus(input: DsnInput, host: string): string {
  // in the order of RFC 3464's grammar, our extension field last
  const perMessage = [
    ...(input.envelopeId ? [foldField('Original-Envelope-Id', xtext(input.envelopeId))] : []),
    foldField('Reporting-MTA', `dns; ${host}`),
    foldField('Arrival-Date', rfc5322Date(new Date(input.arrivalDate))),
    foldField('X-Sluice-Queue-ID', token(input.queueId)),
  ];
  const blocks = input.recipients.map((r) => {
    const fields = [
      ...(r.originalRecipient ? [foldField('Original-Recipient', originalRecipientField(r.originalRecipient))] : []),
      foldField('Final-Recipient', addressField(r.recipient)),
      foldField('Action', r.action),
      foldField('Status', statusCode(r)),
      ...(r.remoteMta ? [foldField('Remote-MTA', `dns; ${token(r.remoteMta)}`)] : []),
      ...(r.diagnostic ? [foldField('Diagnostic-Code', diagnosticCode(r.diagnostic))] : []),
      ...(r.lastAttempt ? [foldField('Last-Attempt-Date', rfc5322Date(new Date(r.lastAttempt)))] : []),
      ...(r.action === 'delayed' && r.willRetryUntil ? [foldField('Will-Retry-Until', rfc5322Date(new Date(r.willRetryUntil)))] : []),
    ];
    return fields.join('\r\n');
  });
  return `${[perMessage.join('\r\n'), ...blocks].join('\r\n\r\n')}\r\n`;
}

/** A well-formed enhanced status (of class 2 for a success), or the default for the action. */
function statusCode(r: DsnRecipient): string {
  const s = r.status.trim();
  const shape = r.action === 'relayed' ? /^2\.\d{1,3}\.\d{1,3}$/ : /^[245]\.\d{1,3}\.\d{1,3}$/;
  return shape.test(s) ? s : r.action === 'failed' ? '5.0.0' : r.action === 'delayed' ? '4.0.0' : '2.0.0';
}

/** ORCPT "rfc822;address" as an address field; another address type as given, in ASCII. */
function originalRecipientField(orcpt: string): string {
  const at = orcpt.indexOf(';');
  const type = at > 0 ? orcpt.slice(0, at).trim() : 'rfc822';
  const value = at > 0 ? orcpt.slice(at + 1) : orcpt;
  return type.toLowerCase() === 'rfc822' ? addressField(value) : `${token(type, 40)}; ${asciiLine(value, 400)}`;
}

/** "rfc822; a@b.test", or RFC 6533's "utf-8; " with \x{HEX} escapes for a non-ASCII address. */
function addressField(value: string): string {
  const a = address(value);
  if (/^[\x21-\x7e]*$/.test(a)) return `rfc822; ${a}`;
  const escaped = [...a].map((c) => (/[\x21-\x5b\x5d-\x7e]/.test(c) ? c : `\\x{${c.codePointAt(0)!.toString(16).toUpperCase()}}`)).join('');
  return `utf-8; ${escaped}`;
}

/** "smtp; 550 5.1.1 ..." for a remote reply, "X-Sluice; ..." for our own error text. */
function diagnosticCode(diagnostic: string): string {
  const text = asciiLine(oneLine(diagnostic));
  return /^\d{3}\b/.test(text) ? `smtp; ${text}` : `X-Sluice; ${text}`;
}

/** A multi-line SMTP reply folded into one line without the repeated code prefixes. */
function oneLine(reply: string): string {
  const text = binaryToText(reply);
  return /^\d{3}[ -]/.test(text.trim()) ? readReply(text.trim()).text : text;
}

/**
 * nodemailer hands replies over as 'binary' strings (one char per octet). When those octets are
 * UTF-8 (an SMTPUTF8 server), show the characters; otherwise keep the string as it is.
 */
function binaryToText(s: string): string {
  if (/[^\x00-\xff]/.test(s) || !/[\x80-\xff]/.test(s)) return s;
  const decoded = Buffer.from(s, 'latin1').toString('utf8');
  return decoded.includes('\ufffd') ? s : decoded;
}

/** The header block alone: everything before the first empty line. */
function headerBlock(headers: string): string {
  const end = headers.search(/\r?\n\r?\n|\r\r/);
  return end === -1 ? headers : headers.slice(0, end);
}

/** Part 3: the original headers, CRLF only, lines cut to 998 octets, size bounded. */
function headerPart(headers: string): string {
  const lines = headerBlock(headers)
    .split(/\r\n|\r|\n/)
    .filter((l) => l !== '');
  const out: string[] = [];
  let size = 0;
  for (const line of lines) {
    // latin1: one char is one octet, so lengths are octet counts
    const pieces = [line.slice(0, MAX_LINE_OCTETS)];
    for (let i = MAX_LINE_OCTETS; i < line.length; i += MAX_LINE_OCTETS - 1) pieces.push(` ${line.slice(i, i + MAX_LINE_OCTETS - 1)}`);
    for (const piece of pieces) {
      size += piece.length + 2;
      if (size > MAX_HEADER_PART_OCTETS) return `${out.join('\r\n')}\r\n`;
      out.push(piece);
    }
  }
  return out.length ? `${out.join('\r\n')}\r\n` : '';
}
