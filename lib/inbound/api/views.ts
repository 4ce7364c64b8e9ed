/**
 * The JSON shapes of the inbox API: a listing line, a whole message, and Mailsac's
 * `EmailMessage` for the routes a suite written against Mailsac calls. The shapes are built from
 * what the store keeps and nothing else.
 *
 * Seen from an inbox, a message shows only the envelope recipients that led to that inbox: the
 * other recipients of the same transaction may be someone else's BCC.
 */
import type { ListedMessage, StoredMessage } from '../inbox.js';
import type { InboundEnvelope, InboxEntry, MessageSummary, ParsedMessage } from '../store/types.js';

const iso = (ms: number) => new Date(ms).toISOString();

/** One line of a listing. */
export function listedView(inbox: string, item: ListedMessage) {
  const { envelope, entry, summary } = item;
  return {
    id: envelope.id,
    inbox,
    ...summaryFields(summary),
    receivedAt: iso(envelope.receivedAt),
    size: envelope.size,
    envelope: { from: envelope.from, to: entry.rcpts },
    tags: entry.tags,
    read: entry.read,
    tls: envelope.client.tls,
  };
}

function summaryFields(summary: MessageSummary | null) {
  return {
    from: summary?.from ?? null,
    to: summary?.to ?? [],
    cc: summary?.cc ?? [],
    subject: summary?.subject ?? '',
    date: summary?.date ?? null,
    messageId: summary?.messageId ?? null,
    spam: summary?.spam ?? null,
    links: summary?.links ?? [],
    codes: summary?.codes ?? [],
    attachments: summary?.attachments ?? [],
  };
}

/** A whole message: seen from one inbox (with its entry), or by id alone (every inbox). */
export function messageView(msg: StoredMessage, from?: { inbox: string; entry: InboxEntry }) {
  const { envelope, parsed } = msg;
  return {
    id: envelope.id,
    ...(from ? { inbox: from.inbox, tags: from.entry.tags, read: from.entry.read } : { inboxes: envelope.inboxes }),
    receivedAt: iso(envelope.receivedAt),
    size: envelope.size,
    envelope: { from: envelope.from, to: from ? from.entry.rcpts : envelope.rcpts.map((r) => r.address) },
    client: envelope.client,
    releases: envelope.releases ?? [],
    ...parsedFields(parsed),
  };
}

function parsedFields(parsed: ParsedMessage | null) {
  return {
    from: parsed?.from ?? null,
    to: parsed?.to ?? [],
    cc: parsed?.cc ?? [],
    replyTo: parsed?.replyTo ?? [],
    subject: parsed?.subject ?? '',
    date: parsed?.date ?? null,
    messageId: parsed?.messageId ?? null,
    text: parsed?.text ?? null,
    html: parsed?.html ?? null,
    truncated: parsed?.truncated ?? false,
    attachments: parsed?.attachments ?? [],
    links: parsed?.links ?? [],
    codes: parsed?.codes ?? [],
    auth: parsed?.auth ?? null,
    spam: parsed?.spam ?? null,
    ...(parsed?.parseError ? { parseError: parsed.parseError } : {}),
    ...(parsed ? {} : { parseError: 'the message could not be parsed; its raw source is served whole' }),
  };
}

/** Mailsac's `EmailMessage`, seen from `inbox`. */
export function mailsacView(inbox: string, envelope: InboundEnvelope, entry: InboxEntry, summary: Pick<MessageSummary, 'from' | 'cc' | 'subject' | 'links' | 'spam' | 'attachments'> | null, via: string) {
  const md5s = (summary?.attachments ?? []).map((a) => a.md5);
  return {
    _id: envelope.id,
    from: summary?.from ? [summary.from] : [],
    // Mailsac's `to` holds the envelope recipients (RCPT TO) of this inbox
    to: entry.rcpts.map((address) => ({ address, name: '' })),
    cc: summary?.cc ?? [],
    bcc: [],
    subject: summary?.subject ?? '',
    savedBy: null,
    inbox,
    originalInbox: entry.rcpts[0] ?? inbox,
    domain: inbox.slice(inbox.lastIndexOf('@') + 1),
    received: iso(envelope.receivedAt),
    size: envelope.size,
    attachments: md5s.length ? md5s : null,
    ip: envelope.client.ip,
    via,
    folder: 'inbox',
    labels: [],
    read: entry.read,
    rtls: envelope.client.tls,
    links: (summary?.links ?? []).map((l) => l.url),
    spam: summary?.spam ?? null,
  };
}
