/**
 * The config schema: every key Sluice reads, with its type and bounds. Top-level defaults live in
 * config/default.toml (documented there); entries the user names (zones, routes, interfaces,
 * plugins) carry their defaults here. The `Config` type is inferred from this schema.
 */
import ipaddr from 'ipaddr.js';
import { isCatchAll, isCidr } from './net.js';
import { t, withDefault, type Infer } from './spec.js';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HOSTPORT = /^[^\s:]+(:\d{1,5})?$|^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/;
/** a host name or address literal: one word, no controls (it ends up in greetings and headers) */
const HOST = /^[A-Za-z0-9_.:\[\]-]{1,253}$/;

const port = () => t.int({ min: 0, max: 65535 });
const host = () => t.string({ pattern: HOST, hint: 'a host name or IP address like "127.0.0.1"' });
const cidr = () => t.string({ valid: isCidr, hint: 'a CIDR block like "127.0.0.0/8" or an IP address' });

/** What every SMTP door has (submission listeners and the inbound receiver): address, TLS, limits, deadlines. */
const doorFields = {
  host: host(),
  port: port(),
  /** PEM key and certificate; STARTTLS is offered when both are set */
  key: t.optString(),
  cert: t.optString(),
  maxSize: t.size({ min: 1024 }),
  /** smtp-server waits this long before the greeting to catch early talkers */
  greetingDelay: t.duration({ max: 30_000 }),
  /**
   * peers allowed to send a PROXY protocol header; empty = PROXY protocol off. Whoever may send
   * one chooses the client address that trustedNetworks (and every per-client limit) is checked
   * against, so "any peer" is refused: it would make every client able to claim any address.
   */
  proxyProtocol: t.list(
    t.string({
      valid: (v) => v === '*' || isCidr(v),
      refuse: (v) =>
        v === '*' || isCatchAll(v)
          ? `${JSON.stringify(v)} would let any peer send a PROXY header and claim any client address, a trusted one included: list the addresses of your proxies (IP addresses or CIDR blocks) instead`
          : undefined,
      hint: 'an IP address or CIDR block of a proxy',
    }),
  ),
  maxClients: t.int({ min: 1 }),
  maxConnectionsPerIp: t.int({ min: 1 }),
  /** idle time between two commands */
  socketTimeout: t.duration({ min: 100 }),
  /** one command line must arrive within this (slowloris guard) */
  commandTimeout: t.duration({ min: 100 }),
  /** a DATA transfer must finish within this */
  dataTimeout: t.duration({ min: 100 }),
  /** a whole session may last at most this */
  sessionTimeout: t.duration({ min: 100 }),
  /** failed commands (5xx replies) in one session before it is closed with 421 */
  maxBadCommands: t.int({ min: 1 }),
};

/** Settings one SMTP submission listener has; extra interfaces override any of them. */
const listenerFields = {
  ...doorFields,
  /** implicit TLS from the first byte (port 465 style) */
  secure: t.bool(),
  maxRecipients: t.int({ min: 1, max: 100_000 }),
  /** "always": every client authenticates; "untrusted": trusted networks may relay without it */
  auth: t.string({ oneOf: ['always', 'untrusted'] }),
  /** with key and cert set: allow AUTH before STARTTLS (a listener without TLS offers AUTH in the clear) */
  allowInsecureAuth: t.bool(),
  authMethods: t.list(t.string({ oneOf: ['PLAIN', 'LOGIN'] })),
  trustedNetworks: t.list(cidr()),
  reverseLookup: t.bool(),
  /** leave the client's IP and name out of the Received header */
  hideClientInfo: t.bool(),
};

const listenerSpec = t.object(listenerFields);
/**
 * `[smtp.interfaces.NAME]`: the same keys, each optional; an unset key is inherited from [smtp]
 * (see `listeners()` in load.ts). Unknown keys are refused here as anywhere else.
 */
const interfaceSpec = t.object(t.partial(listenerFields));

const TLS_POLICY = ['none', 'may', 'encrypt', 'verify'] as const;
const tlsPolicy = () => t.string({ oneOf: TLS_POLICY });

const routeSpec = t.object({
  host: host(),
  port: withDefault(port(), 25),
  tls: t.optString({ oneOf: TLS_POLICY }),
});

const zoneSpec = t.object({
  processes: withDefault(t.int({ min: 0, max: 64 }), 1),
  connections: withDefault(t.int({ min: 1, max: 1000 }), 5),
  /** local addresses with their HELO names */
  pool: withDefault(t.list(t.object({ address: t.string({ valid: (v) => ipaddr.isValid(v), hint: 'an IP address' }), name: host() })), []),
  /** e.g. "100 messages/minute" per connection; empty = unlimited */
  throttling: withDefault(t.string({ pattern: /^$|^\d+\s*(messages?\s*)?\/\s*(s|sec|second|m|min|minute|h|hour)$/i, hint: 'like "100 messages/minute"' }), ''),
  connectionsPerDomain: withDefault(t.int({ min: 1 }), 5),
  /** messages per minute to one domain, shared by every process of the zone; 0 = unlimited */
  domainRatePerMinute: withDefault(t.int({ min: 0 }), 0),
  /** header name → value: a message with that header goes to this zone */
  routingHeaders: withDefault(t.map(t.string()), {}),
  senderDomains: withDefault(t.list(t.string()), []),
  recipientDomains: withDefault(t.list(t.string()), []),
  ignoreIPv6: withDefault(t.bool(), false),
  /** TLS policy for this zone's deliveries unless tlsPolicies names the domain */
  tls: t.optString({ oneOf: TLS_POLICY }),
  /** a smarthost for the whole zone instead of MX lookups */
  route: t.optObject({ host: host(), port: withDefault(port(), 25) }),
});

const dkimKeySpec = t.object({
  domain: t.string(),
  selector: t.string({ pattern: /^[A-Za-z0-9._-]+$/, hint: 'a DNS label like "s1"' }),
  privateKey: t.string({ hint: 'a path to a PEM file' }),
  algorithm: withDefault(t.string({ oneOf: ['rsa-sha256', 'ed25519-sha256'] }), 'rsa-sha256'),
});

/** An inbound domain: a host name, or "*.name" for every subdomain of it. */
const INBOUND_DOMAIN = /^(\*\.)?(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** The receiver for disposable addresses: its SMTP door, its limits, and the inbox store. */
const inboundSpec = t.object({
  enabled: t.bool(),
  ...doorFields,
  /** the domains whose every address has an inbox; "*.example.test" takes every subdomain */
  domains: t.list(t.string({ pattern: INBOUND_DOMAIN, hint: 'a domain like "sluice.test" or "*.sluice.test"' }), { maxItems: 1000 }),
  /** "fold": foo+tag@D goes to inbox foo@D with tag "tag"; "keep": foo+tag@D is an inbox of its own */
  plusAddressing: t.string({ oneOf: ['fold', 'keep'] }),
  maxRecipients: t.int({ min: 1, max: 10_000 }),
  /** the inbox store (its own LevelDB) */
  path: t.string(),
  /** a message is deleted this long after it arrived */
  ttl: t.duration({ min: 1000 }),
  /** messages kept per inbox; the oldest goes first */
  maxPerInbox: t.int({ min: 1, max: 100_000 }),
  /** all stored mail together; over it the oldest messages go, past it by a tenth new mail gets 452 */
  maxStoreSize: t.size({ min: 1024 * 1024 }),
  /** below this much free disk new mail gets 452 */
  minFreeSpace: t.size(),
  /** check SPF, DKIM and DMARC of every message and store the results (never enforced) */
  checkAuth: t.bool(),
  /** outbound mail to these domains is delivered to this receiver (unless [routes] names the domain) */
  routeLocal: t.bool(),
  /** IPs, CIDR blocks and sender domains refused with 554, one per line; re-read when it changes */
  blocklist: t.string(),
  /** the key of altinbox aliases (HMAC); unset: one the inbox store makes and keeps */
  aliasSecret: t.secret(t.optString()),
  /** every new message POSTed to a URL, signed and retried, kept in the store until delivered */
  webhook: t.object({
    url: t.optString({ pattern: /^https?:\/\//, hint: 'an http(s) URL' }),
    secret: t.secret(t.optString()),
    /** inbox domain → its own URL and secret, instead of the one above */
    domains: t.map(t.object({ url: t.string({ pattern: /^https?:\/\//, hint: 'an http(s) URL' }), secret: withDefault(t.secret(t.optString()), undefined) })),
    timeout: t.duration({ min: 100 }),
    /** waits between tries; after the last, the notification is given up */
    retrySchedule: t.list(t.duration({ min: 10 }), { maxItems: 50 }),
    /** notifications kept at most; past it the oldest are dropped (logged) */
    maxPending: t.int({ min: 1 }),
  }),
  /** POST /api/messages/:id/release: to the outbound queue, for these recipients only */
  release: t.object({
    /** addresses, domains ("example.test") or "*.example.test"; empty: release is off */
    allow: t.list(t.string({ pattern: /^(\*\.|@)?[^\s]+$/, hint: 'an address, a domain or "*.domain"' }), { maxItems: 1000 }),
    /** the envelope sender of released mail; "": the original's */
    from: t.string(),
  }),
  throttle: t.object({
    /** clients these tiers never apply to (the local Sluice delivering to itself) */
    exempt: t.list(cidr()),
    /** new connections per minute from one IP (IPv6: one /64) */
    connectionsPerMinutePerIp: t.int({ min: 0 }),
    /** transactions (MAIL FROM) per minute from one IP (IPv6: one /64) */
    messagesPerMinutePerIp: t.int({ min: 0 }),
    /** transactions per minute from one sender's registrable domain (a.b.example.test counts as example.test) */
    messagesPerMinutePerSenderDomain: t.int({ min: 0 }),
    /** messages per minute into one inbox */
    messagesPerMinutePerInbox: t.int({ min: 0 }),
    /** the load gate: event-loop delay over this, or more store writes pending than maxPendingWrites */
    maxEventLoopDelay: t.duration({ min: 10 }),
    maxPendingWrites: t.int({ min: 1 }),
    /** how long a new connection waits for the load to fall before it gets 421 */
    loadWait: t.duration({ max: 60_000 }),
  }),
  /** the spam score of each message (lib/inbound/spam/), set after the 250 */
  spam: t.object({
    /** "bayes": the built-in classifier; "rspamd": Rspamd's score; "both": the higher of the two */
    mode: t.string({ oneOf: ['bayes', 'rspamd', 'both'] }),
    /** the model `sluice spam train` writes; re-read when it changes; none: no Bayes score */
    model: t.string(),
    rspamd: t.object({
      /** Rspamd's normal worker (or proxy); unset: no Rspamd score */
      url: t.optString({ pattern: /^https?:\/\/[^\s]+$/, hint: 'an http(s) URL like "http://127.0.0.1:11333"' }),
      /** an answer must come within this, or the message is kept without Rspamd's score */
      timeout: t.duration({ min: 100, max: 60_000 }),
      /** bigger messages are not sent to Rspamd */
      maxSize: t.size({ min: 1024 }),
      /** after a failure, messages skip Rspamd this long before it is asked again */
      retryAfter: t.duration({ min: 100 }),
    }),
  }),
  /** POP3 for private inboxes (inbound/pop3/): USER the address, PASS the inbox key */
  pop3: t.object({
    enabled: t.bool(),
    host: host(),
    port: port(),
    /** PEM key and certificate for STLS; unset: the receiver's (inbound.key, inbound.cert) */
    key: t.optString(),
    cert: t.optString(),
    /** with TLS possible: allow USER and PASS before STLS */
    allowInsecureAuth: t.bool(),
    maxClients: t.int({ min: 1 }),
    maxConnectionsPerIp: t.int({ min: 1 }),
    /** time waiting for a command (RFC 1939: at least 10 minutes), or for a client to read our reply */
    socketTimeout: t.duration({ min: 100 }),
    /** one command line must be complete within this */
    commandTimeout: t.duration({ min: 100 }),
    sessionTimeout: t.duration({ min: 100 }),
    /** failed logins from one client IP (IPv6: one /64) within loginFailureWindow; past it, -ERR at once */
    maxLoginFailures: t.int({ min: 1 }),
    loginFailureWindow: t.duration({ min: 1000 }),
    /** the answer to a failed login waits this long */
    loginFailureDelay: t.duration({ max: 10_000 }),
  }),
  api: t.object({
    /** requests per minute from one client IP to the inbox API (/api/...); 0: unlimited */
    ratePerMinute: t.int({ min: 0 }),
    /** live streams (SSE, WebSocket) at once per client IP */
    maxStreamsPerIp: t.int({ min: 1 }),
  }),
});

const pluginSpec = t.map(t.any());

export const configSchema = t.object({
  /** the name this host gives in greetings, HELO and Received headers */
  hostname: host(),
  log: t.object({
    level: t.string({ oneOf: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] }),
    /** json lines, readable lines, or auto: readable when stdout is a terminal */
    format: t.string({ oneOf: ['auto', 'json', 'pretty'] }),
  }),
  smtp: t.object({
    enabled: t.bool(),
    ...listenerFields,
    /** failed logins from one address (IPv6: one /64) within authFailureWindow; past it, 421 */
    maxAuthFailures: t.int({ min: 1 }),
    authFailureWindow: t.duration({ min: 1000 }),
    /** user name → password hash from `sluice hash-password` */
    users: t.map(t.secret(t.string({ pattern: /^scrypt\$/, hint: 'a hash from `sluice hash-password`' }))),
    /** more listeners beside the main one; unset keys come from [smtp] */
    interfaces: t.map(interfaceSpec, { keyPattern: NAME }),
  }),
  api: t.object({
    enabled: t.bool(),
    host: host(),
    port: port(),
    /** bearer token; required when the API listens beyond loopback */
    token: t.secret(t.optString()),
    maxBodySize: t.size({ min: 1024 }),
    maxRecipients: t.int({ min: 1, max: 100_000 }),
    /** a request, headers and body, must arrive within this (408) */
    requestTimeout: t.duration({ min: 100 }),
    /** a connection that sends nothing for this long is closed */
    idleTimeout: t.duration({ min: 100 }),
    /** connections at once; more are closed as they come */
    maxConnections: t.int({ min: 1 }),
    /** the reply of POST /send and /send-raw: Sluice's, or ZoneMTA's for its users' scripts
     * (a request may ask for either in X-Reply-Shape) */
    replyShape: t.string({ oneOf: ['sluice', 'zonemta'] }),
  }),
  channel: t.object({
    host: host(),
    port: port(),
    /** let channel.host be other than a loopback address (the channel carries every message) */
    allowNonLoopback: t.bool(),
  }),
  queue: t.object({
    /** a zone with rows due this long and no attempt meanwhile is stalled (GET /health/ready) */
    stalledAfter: t.duration({ min: 1000 }),
    path: t.string(),
    /** body bytes per LevelDB value */
    chunkSize: t.size({ min: 1024, max: 16 * 1024 * 1024 }),
    /** largest header block accepted */
    maxHeaderSize: t.size({ min: 1024, max: 16 * 1024 * 1024 }),
    /** a message arriving with more Received headers than this is in a loop (Postfix's hopcount_limit) */
    maxReceivedHeaders: t.int({ min: 1, max: 1000 }),
    /** how often to collect bodies left behind by failed or interrupted ingests */
    gcInterval: t.duration({ min: 1000 }),
    /** a body with no metadata older than this is garbage */
    gcGrace: t.duration({ min: 1000 }),
    /** refuse new mail (452) when free space on the queue disk falls below this */
    minFreeSpace: t.size(),
    /** honour a future Date header by holding the first attempt until then */
    futureDate: t.bool(),
    /** a worker must report within this, or its deliveries are handed out again */
    leaseTimeout: t.duration({ min: 1000 }),
    /** waits between attempts; the last one repeats until maxQueueTime */
    retrySchedule: t.list(t.duration({ min: 100 }), { maxItems: 100 }),
    /** a message still undelivered after this bounces */
    maxQueueTime: t.duration({ min: 1000 }),
    /** send one "delayed" notice when a delivery has waited this long; 0 = never */
    delayWarning: t.duration(),
  }),
  delivery: t.object({
    connectTimeout: t.duration({ min: 100 }),
    greetingTimeout: t.duration({ min: 100 }),
    socketTimeout: t.duration({ min: 100 }),
    /** one delivery attempt as a whole, over every MX host and address; shorter than queue.leaseTimeout */
    attemptTimeout: t.duration({ min: 100 }),
    /** the SMTP port of MX hosts (Postfix's smtp_tcp_port); 25 except in tests */
    mxPort: port(),
    /** after a refused or timed-out connection, skip that address for this long; 0 = never */
    unreachableHold: t.duration(),
    /** keep a session open this long after a message, for the next one to the same host; 0 = no reuse */
    sessionIdle: t.duration(),
    maxMessagesPerSession: t.int({ min: 1 }),
    /** recipients of one domain sent in one SMTP transaction */
    maxRecipientsPerTransaction: t.int({ min: 1, max: 1000 }),
    /** deliver to MX hosts that resolve to loopback or private addresses (static routes always may) */
    allowLocalAddresses: t.bool(),
    /** default TLS policy: none, may (opportunistic), encrypt (TLS required), verify (TLS with a valid certificate) */
    tls: tlsPolicy(),
    /** DANE (RFC 7672) for MX hosts with DNSSEC-validated TLSA records; needs a validating resolver */
    dane: t.bool(),
    /** MTA-STS (RFC 8461): fetch and apply recipient domains' policies */
    mtaSts: t.bool(),
    /** PEM file of CA certificates trusted besides the system's, for "verify" and MTA-STS */
    ca: t.optString(),
  }),
  /** delivery events (delivered, deferred, bounced) POSTed to a URL */
  events: t.object({
    url: t.optString({ pattern: /^https?:\/\//, hint: 'an http(s) URL' }),
    /** HMAC-SHA256 key for the X-Sluice-Signature header */
    secret: t.secret(t.optString()),
    timeout: t.duration({ min: 100 }),
    maxAttempts: t.int({ min: 1, max: 100 }),
    /** events waiting in memory at most; beyond, the oldest are dropped (and logged) */
    maxPending: t.int({ min: 1 }),
  }),
  /** TLS policy per recipient domain, over the zone's and the default */
  tlsPolicies: t.map(tlsPolicy()),
  zones: t.map(zoneSpec, { keyPattern: NAME }),
  routes: t.map(routeSpec),
  dns: t.object({
    servers: t.list(t.string({ pattern: HOSTPORT, hint: 'an address like "127.0.0.1:5353"' })),
    /** one DNS query may take this long */
    timeout: t.duration({ min: 50 }),
  }),
  dkim: t.object({
    keys: t.list(dkimKeySpec),
  }),
  inbound: inboundSpec,
  hooks: t.object({
    /** a hook call that takes longer is a temporary failure */
    timeout: t.duration({ min: 10 }),
  }),
  plugins: t.map(pluginSpec),
});

export type Config = Infer<typeof configSchema>;
export type ListenerConfig = Infer<typeof listenerSpec>;
export type InterfaceConfig = Infer<typeof interfaceSpec>;
export type ZoneConfig = Infer<typeof zoneSpec>;
export type DkimKeyConfig = Infer<typeof dkimKeySpec>;
export type InboundConfig = Infer<typeof inboundSpec>;
export type Pop3Config = InboundConfig['pop3'];
