/**
 * The closed map of hook names and their arguments. Registering a name that is not here is an
 * error at start-up; a handler's arguments are typed by its name. Names and argument shapes
 * follow ZoneMTA's where it has the hook (`smtp:rcpt_to` gets `(address, session)`,
 * `message:headers` gets `(envelope, messageInfo)`, `queue:release` gets `(zone, data)` …).
 *
 * Each hook runs in one process: `main` (the master: listeners, ingest, queue, outcomes) or
 * `sender` (a delivery worker). A plugin enabled for a process only ever sees that process's
 * hooks called. Each hook is one of two kinds:
 * - `gate`: a handler may reject by throwing an Error with `responseCode` (and optionally
 *   `enhancedStatus`); any other throw, or a timeout, is a temporary failure (451 4.3.0) that is
 *   logged with the plugin's name. The first rejection stops the chain.
 * - `notify`: every handler runs; a throw is logged and changes nothing.
 *
 * HOOKS below is the catalogue (process, kind, one line of what a handler may change);
 * plugins/README.md documents every hook in a table, and a test keeps the two in step.
 */
import type { Readable } from 'node:stream';
import type { SMTPServerAddress, SMTPServerSession } from 'smtp-server';
import type { MessageHeaders } from '../message/headers.js';
import type { Origin } from '../queue/types.js';

/** The envelope as hooks see it while a message is accepted. */
export interface HookEnvelope {
  /** the queue id the message will get ('' in smtp:data and api:mail: not assigned yet) */
  id: string;
  /** envelope sender; '' is the null sender */
  from: string;
  to: string[];
  origin: Origin;
  /** the SMTP session when the message came by SMTP */
  session?: SMTPServerSession;
}

/** What message:headers sees: the header block, before Message-ID/Date/Received are added. */
export interface MessageInfo {
  /** the header block; a hook may get, add, update and remove headers */
  headers: MessageHeaders;
  /** the Message-ID once known (set after message:headers) */
  messageId?: string;
  size?: number;
  bodyHash?: string;
}

/** What message:store and message:queue see: the whole message is stored by now. */
export interface StoredMessageInfo extends MessageInfo {
  messageId: string;
  /** headers + body, bytes */
  size: number;
  /** DKIM relaxed body hash (sha256, base64); the body can no longer change */
  bodyHash: string;
  /**
   * The full message as it will be queued: the current header block, then the stored body,
   * streamed from the queue (memory stays bounded). Read it within the hook: after
   * message:queue the body may already be delivered and gone.
   */
  read(): Readable;
}

/** Which zone each recipient goes to; `queue:route` handlers may change `zones[i]`. */
export interface Routing {
  recipients: readonly string[];
  zones: string[];
}

/** An AUTH attempt. A handler accepts it with `accept()`, refuses it by throwing (535), or passes. */
export interface AuthAttempt {
  /** PLAIN or LOGIN */
  readonly method: string;
  readonly username: string;
  /** '' when the client gave none */
  readonly password: string;
  /** Accepts the login; the session is then authenticated as `user` (default: the username). */
  accept(user?: string): void;
  /** The user a handler accepted, if one did. */
  readonly acceptedUser: string | undefined;
}

/** One delivery as sender hooks see it: one message to one domain's recipients. */
export interface Delivery {
  /** queue id */
  readonly id: string;
  readonly zone: string;
  /** the recipients' domain */
  readonly domain: string;
  readonly messageId: string;
  /** headers + body, bytes, as stored */
  readonly size: number;
  /** failed attempts before this one */
  readonly attempts: number;
  readonly recipients: readonly { readonly seq: number; readonly recipient: string }[];
  /** sender:fetch and sender:headers may change `from` (VERP, SRS); the recipients are fixed */
  envelope: { from: string; readonly to: readonly string[] };
  /** sender:fetch and sender:headers may change headers: they are DKIM-signed after the hooks */
  headers: MessageHeaders;
}

/** Where a connection is about to go; a `sender:connect` handler may change any field. */
export interface ConnectOptions {
  /** the MX host name (certificate checks, logs) */
  hostname: string;
  /** the IP address to connect to */
  host: string;
  port: number;
  /** the local address to connect from (the zone's pool); undefined: any */
  localAddress?: string;
  /** the name we give in EHLO/HELO */
  localHostname: string;
}

/** The connection a delivery used, as far as it is known. */
export interface SenderConnection {
  /** the MX host name (or the static route's host) */
  hostname: string;
  /** the IP address, when known */
  host?: string;
  port?: number;
  localAddress?: string;
  /** the transaction ran over TLS */
  tls: boolean;
}

/** What the destination said when it took the message. */
export interface DeliveredInfo {
  /** the reply to the final dot */
  response: string;
  /** recipients the destination accepted */
  accepted: string[];
  /** recipients it refused at RCPT (they get their own outcome) */
  rejected: string[];
  connection: SenderConnection;
}

/** A delivery that failed, for some or all of its recipients. */
export interface DeliveryFailure {
  message: string;
  /** ECONNECTION, ETIMEDOUT, EDNS, ETLS, EPROTOCOL, EENVELOPE … */
  code?: string;
  responseCode?: number;
  response?: string;
  /** the SMTP command that failed, if any */
  command?: string;
  /** what becomes of each recipient */
  results: readonly { seq: number; recipient: string; outcome: 'deferred' | 'bounced'; status?: string; category?: string }[];
}

/** One bounced recipient, before its DSN is made (ZoneMTA's `bounce`). */
export interface BounceInfo {
  readonly id: string;
  readonly seq: number;
  readonly zone: string;
  /** the return path: envelope sender of the bounced message */
  readonly from: string;
  /** the recipient that bounced */
  readonly to: string;
  readonly messageId: string;
  /** the bounced message's headers (reading them changes nothing) */
  readonly headers: MessageHeaders;
  readonly response: string;
  readonly responseCode?: number;
  /** enhanced status, e.g. 5.1.1 */
  readonly status?: string;
  /** the reply's class: unknown user, blocklist, policy … */
  readonly category?: string;
  readonly mx?: string;
  readonly attempts: number;
  /** when it bounced, ms */
  readonly time: number;
  /**
   * Whether a DSN goes to the sender for this recipient. False already for the null sender, for
   * auto-submitted or report mail, and when the recipient's NOTIFY does not ask for failures. A
   * handler may set it to false (the bounce is then logged as DROPPED); setting it to true cannot
   * force a DSN where none may go.
   */
  dsn: boolean;
}

export type ReleaseReason = 'delivered' | 'bounced' | 'deleted';

/** A delivery row that left the queue for good (ZoneMTA's `data` of queue:release). */
export interface ReleaseInfo {
  readonly id: string;
  readonly seq: number;
  readonly recipient: string;
  readonly domain: string;
  readonly reason: ReleaseReason;
  /** the last reply, when there was a delivery attempt */
  readonly response?: string;
}

/** One delivery outcome as the master records it (not in ZoneMTA: for metrics and audit). */
export interface OutcomeInfo {
  readonly id: string;
  readonly seq: number;
  readonly zone: string;
  readonly recipient: string;
  readonly domain: string;
  readonly result: 'delivered' | 'deferred' | 'bounced';
  readonly response: string;
  readonly status?: string;
  readonly category?: string;
  readonly mx?: string;
}

/** A message the inbound receiver stored and parsed (inbound:message). */
export interface InboundMessageInfo {
  /** the inbox message id */
  readonly id: string;
  /** envelope sender; '' is the null sender */
  readonly from: string;
  /** the inboxes it went to */
  readonly inboxes: readonly string[];
  readonly subject: string;
  /** raw bytes */
  readonly size: number;
  /** ms */
  readonly receivedAt: number;
  readonly client: { readonly ip: string; readonly helo: string; readonly tls: boolean };
}

export interface HookMap {
  'smtp:connect': [session: SMTPServerSession];
  'smtp:auth': [auth: AuthAttempt, session: SMTPServerSession];
  'smtp:mail_from': [address: SMTPServerAddress, session: SMTPServerSession];
  'smtp:rcpt_to': [address: SMTPServerAddress, session: SMTPServerSession];
  'smtp:data': [envelope: HookEnvelope, session: SMTPServerSession];
  'api:mail': [envelope: HookEnvelope, message: Record<string, unknown>];
  'message:headers': [envelope: HookEnvelope, messageInfo: MessageInfo];
  'message:store': [envelope: HookEnvelope, messageInfo: StoredMessageInfo];
  'message:queue': [envelope: HookEnvelope, messageInfo: StoredMessageInfo];
  'queue:route': [envelope: HookEnvelope, routing: Routing];
  'queue:bounce': [bounce: BounceInfo];
  'queue:release': [zone: string, data: ReleaseInfo];
  'queue:outcome': [outcome: OutcomeInfo];
  'sender:fetch': [delivery: Delivery];
  'sender:headers': [delivery: Delivery];
  'sender:connect': [delivery: Delivery, options: ConnectOptions];
  'sender:delivered': [delivery: Delivery, info: DeliveredInfo];
  'sender:responseError': [delivery: Delivery, connection: SenderConnection | undefined, err: DeliveryFailure];
  'inbound:connect': [session: SMTPServerSession];
  'inbound:mail_from': [address: SMTPServerAddress, session: SMTPServerSession];
  'inbound:rcpt_to': [address: SMTPServerAddress, session: SMTPServerSession];
  'inbound:message': [message: InboundMessageInfo];
}

export type HookName = keyof HookMap;
export type HookHandler<N extends HookName> = (...args: HookMap[N]) => unknown | Promise<unknown>;
export type PluginProcess = 'main' | 'sender';
export type HookKind = 'gate' | 'notify';

export interface HookSpec {
  process: PluginProcess;
  kind: HookKind;
  /** when it is called and what a handler may change */
  summary: string;
}

export const HOOKS: { readonly [N in HookName]: HookSpec } = {
  'smtp:connect': { process: 'main', kind: 'gate', summary: 'a client connected; a handler may refuse the connection' },
  'smtp:auth': { process: 'main', kind: 'gate', summary: 'AUTH; a handler may accept (auth.accept()), refuse (throw 535) or pass; config users are checked after' },
  'smtp:mail_from': { process: 'main', kind: 'gate', summary: 'MAIL FROM; a handler may refuse the sender' },
  'smtp:rcpt_to': { process: 'main', kind: 'gate', summary: 'RCPT TO; a handler may refuse the recipient' },
  'smtp:data': { process: 'main', kind: 'gate', summary: 'DATA; a handler may refuse the message before it is read' },
  'api:mail': { process: 'main', kind: 'gate', summary: 'POST /send and /send-raw (its message is { raw: true }); a handler may change the envelope or the message JSON, or refuse it' },
  'message:headers': { process: 'main', kind: 'gate', summary: 'header block parsed; a handler may change headers or refuse' },
  'message:store': { process: 'main', kind: 'gate', summary: 'body stored, before the commit; a handler may read the message, change headers or refuse' },
  'message:queue': { process: 'main', kind: 'notify', summary: 'after the commit (the client has its 250); notification' },
  'queue:route': { process: 'main', kind: 'gate', summary: 'zones chosen; a handler may change routing.zones[i]' },
  'queue:bounce': { process: 'main', kind: 'notify', summary: 'a recipient bounced, before the DSN; a handler may set bounce.dsn = false' },
  'queue:release': { process: 'main', kind: 'notify', summary: 'a delivery row left the queue (delivered, bounced, deleted); notification' },
  'queue:outcome': { process: 'main', kind: 'notify', summary: 'a delivery result was recorded (delivered, deferred, bounced); notification' },
  'sender:fetch': { process: 'sender', kind: 'gate', summary: 'a worker took a delivery; a handler may change headers and envelope.from, or fail it' },
  'sender:headers': { process: 'sender', kind: 'gate', summary: 'before connecting and DKIM signing; a handler may change headers and envelope.from' },
  'sender:connect': { process: 'sender', kind: 'gate', summary: 'before connecting to an MX address; a handler may change host, port, localAddress, localHostname' },
  'sender:delivered': { process: 'sender', kind: 'notify', summary: 'the destination accepted the message; notification' },
  'sender:responseError': { process: 'sender', kind: 'notify', summary: 'a delivery failed (deferred or bounced); notification' },
  'inbound:connect': { process: 'main', kind: 'gate', summary: 'a client connected to the inbound receiver; a handler may refuse the connection' },
  'inbound:mail_from': { process: 'main', kind: 'gate', summary: 'MAIL FROM at the inbound receiver; a handler may refuse the sender' },
  'inbound:rcpt_to': { process: 'main', kind: 'gate', summary: 'RCPT TO at the inbound receiver, for an address at one of its domains; a handler may refuse it' },
  'inbound:message': { process: 'main', kind: 'notify', summary: 'the inbound receiver stored and parsed a message; notification' },
};

export const HOOK_NAMES = Object.keys(HOOKS) as HookName[];

export function isHookName(name: string): name is HookName {
  return Object.prototype.hasOwnProperty.call(HOOKS, name);
}
