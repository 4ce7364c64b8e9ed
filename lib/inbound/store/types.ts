/**
 * What the inbox store keeps per message: the envelope (written when the message is accepted),
 * the parsed message and its summary (written by the parser, after the 250), and per inbox the
 * entry that puts the message there.
 */

/** The SMTP side of a message, known when it is accepted. */
export interface InboundEnvelope {
  id: string;
  /** when the 250 was given, ms */
  receivedAt: number;
  /** bytes of the raw message as received */
  size: number;
  /** raw chunks stored */
  chunks: number;
  /** MAIL FROM; '' for the null sender */
  from: string;
  /** every accepted recipient and the inbox it went to (BCC recipients included) */
  rcpts: { address: string; inbox: string; tag: string }[];
  /** the inboxes that still hold the message; when the last one lets go, the message goes */
  inboxes: string[];
  client: ClientInfo;
  /** what became of each release of the message to the outbound queue (newest last) */
  releases?: Release[];
}

export interface Release {
  /** ISO time */
  at: string;
  to: string[];
  /** the outbound queue id, when it was queued */
  queueId?: string;
  /** why it was not, when it was not */
  error?: string;
}

export interface ClientInfo {
  ip: string;
  /** the name the client gave in EHLO/HELO */
  helo: string;
  /** the message came over TLS */
  tls: boolean;
  /** e.g. "TLSv1.3", when tls */
  tlsProtocol?: string;
  tlsCipher?: string;
}

/** The membership of a message in one inbox (the value of an i: key). */
export interface InboxEntry {
  /** the recipients, as given, that led to this inbox */
  rcpts: string[];
  /** plus-address tags folded into this inbox */
  tags: string[];
  read: boolean;
}

export interface Address {
  name: string;
  address: string;
}

export interface AttachmentInfo {
  /** position in the message, from 0: the index the API serves it by */
  index: number;
  filename: string | null;
  contentType: string;
  /** decoded bytes */
  size: number;
  sha256: string;
  md5: string;
  contentId: string | null;
  /** "attachment", "inline", or null when the part did not say */
  disposition: string | null;
  /** an embedded image of the HTML (a Content-ID inside multipart/related) */
  related: boolean;
}

export interface Link {
  url: string;
  /** the anchor text for links from the HTML; '' for links found in plain text */
  text: string;
}

/** SPF, DKIM and DMARC as checked on arrival (stored, never enforced). */
export interface AuthResults {
  spf: { result: string; domain: string | null; info: string };
  dkim: { result: string; domain: string | null; selector: string | null; aligned: boolean; info: string }[];
  dmarc: { result: string; domain: string | null; policy: string | null; info: string } | null;
  /** the Authentication-Results header value we would add (RFC 8601) */
  header: string;
}

/** What the parser makes of a message (m:). */
export interface ParsedMessage {
  headers: { name: string; value: string }[];
  from: Address | null;
  to: Address[];
  cc: Address[];
  replyTo: Address[];
  subject: string;
  /** the Date header, ISO; null when missing or unreadable */
  date: string | null;
  messageId: string | null;
  text: string | null;
  html: string | null;
  /** text or HTML longer than the store keeps was cut */
  truncated: boolean;
  attachments: AttachmentInfo[];
  links: Link[];
  /** candidate one-time codes (parse/codes.ts), in order */
  codes: string[];
  auth: AuthResults | null;
  /** 0.0–1.0 (spam/scorer.ts); null when nothing could score the message */
  spam: number | null;
  /** set when the MIME structure could not be parsed; the raw message is still served whole */
  parseError?: string;
}

/** The parsed fields a listing shows (s:), small enough to read 200 at a time. */
export type MessageSummary = Pick<ParsedMessage, 'from' | 'to' | 'cc' | 'subject' | 'date' | 'messageId' | 'links' | 'codes' | 'spam'> & {
  attachments: Pick<AttachmentInfo, 'index' | 'filename' | 'contentType' | 'size' | 'md5'>[];
};

/** A private inbox (an address) or domain ("example.test", "*.example.test"): who may read it. */
export interface Reservation {
  target: string;
  /** sha256 of the key, hex (the key is 256 random bits: a fast hash is enough) */
  keyHash: string;
  /** ms */
  created: number;
}
