/**
 * The classification of a failed delivery attempt: given what the SMTP client saw (reply code,
 * reply text, nodemailer error code, SMTP phase), decide defer or bounce, the category, the
 * enhanced status to report, and a short message. Pure: no I/O but reading the rules file once.
 *
 * Order:
 *  1. A reply from the remote (a 3-digit code): the rules (config/bounce-rules.txt), first match
 *     wins. Without a match, 4xx defers and 5xx bounces, the category read from the enhanced
 *     status (x.1.1 unknown-user, x.2.2 mailbox-full, ...); ETLS stays a deferred 'tls' and
 *     EAUTH (our smarthost credentials refused) a deferred 'other'.
 *  2. No reply, only an error: network faults (ECONNECTION, ETIMEDOUT, ESOCKET, ECONNREFUSED, ...)
 *     defer; EDNS defers unless the name does not exist or has no address (ENOTFOUND, ENODATA:
 *     bounce, as Postfix does); ETLS defers; a message larger than the server's SIZE bounces.
 *
 * Status: the remote's enhanced status when it gave one, else derived from the category. Its class
 * digit is set to agree with the action (RFC 3464 §2.3.4: 'delayed' is 4.x.x, 'failed' 5.x.x), so a
 * "554 5.7.1 ... blocked using zen.spamhaus.org" that we defer reports 4.7.1; `remoteStatus` keeps
 * the remote's own.
 */
import { CATEGORY_INFO, REPLY_CATEGORIES, categoryOfStatus, type ReplyCategory } from './categories.js';
import { readReply } from './reply-text.js';
import { loadBounceRules, type BounceRule } from './rules.js';

export { REPLY_CATEGORIES, CATEGORY_INFO, type ReplyCategory };
export { loadBounceRules, parseBounceRules, BounceRuleError, DEFAULT_BOUNCE_RULES_FILE, type BounceRule } from './rules.js';

export interface ReplyInput {
  /** the basic reply code; read from `response` when absent */
  responseCode?: number;
  /** the remote's reply; multi-line replies joined with '\n' as nodemailer does */
  response?: string;
  /** nodemailer error code: ECONNECTION, ETIMEDOUT, EDNS, ETLS, EPROTOCOL, EENVELOPE, EMESSAGE, ESOCKET, EAUTH */
  code?: string;
  /** the system error below it (nodemailer's err.originalCode): ECONNREFUSED, ENOTFOUND, ECONNRESET, ... */
  originalCode?: string;
  /** the error's own message, used when there is no reply ("Message size larger than allowed 1000") */
  errorMessage?: string;
  /** SMTP phase: CONN, HELO, MAIL, RCPT, DATA, DOT (nodemailer's 'EHLO', 'MAIL FROM', 'RCPT TO' are read too) */
  phase?: string;
}

export interface ReplyClass {
  action: 'defer' | 'bounce';
  category: ReplyCategory;
  /** the enhanced status to report, class digit agreeing with the action */
  status: string;
  /** short human text */
  message: string;
  /** id of the rule that matched ('config/bounce-rules.txt:42') */
  rule?: string;
  /** the enhanced status exactly as the remote gave it */
  remoteStatus?: string;
  /** the basic reply code of the remote's reply */
  responseCode?: number;
  /** the remote's reply on one line (bounded, no controls): for logs, rows and Diagnostic-Code */
  reply?: string;
}

let defaultRules: BounceRule[] | undefined;

export function classifyReply(input: ReplyInput, rules?: BounceRule[]): ReplyClass {
  const response = input.response?.trim();
  const read = response ? readReply(response, input.responseCode) : undefined;
  const code = read?.code ?? input.responseCode;
  if (code !== undefined && code >= 400 && code < 600) {
    return classifyResponse(code, read ?? { code, text: String(code) }, input, rules ?? (defaultRules ??= loadBounceRules()));
  }
  const byError = classifyError(input);
  // A reply that is no 4xx/5xx (a 220 where a 250 was due) is a protocol fault; keep its text.
  return read ? { ...byError, reply: read.text, ...(code !== undefined ? { responseCode: code } : {}) } : byError;
}

function classifyResponse(code: number, read: { enhanced?: string; text: string }, input: ReplyInput, rules: BounceRule[]): ReplyClass {
  const rule = rules.find((r) => r.pattern.test(read.text));
  const fromStatus = read.enhanced ? categoryOfStatus(read.enhanced.slice(2)) : undefined;
  const byCode: ReplyClass['action'] = code >= 500 ? 'bounce' : 'defer';
  let category: ReplyCategory;
  let action: ReplyClass['action'];
  if (input.code === 'ETLS') {
    // STARTTLS refused or failed with a reply: a TLS policy matter, never final by itself, whatever
    // a rule would make of the text ("500 5.5.1 command unrecognized" to a STARTTLS is no bounce)
    category = 'tls';
    action = 'defer';
  } else if (rule) {
    category = rule.category === 'auto' ? (fromStatus ?? 'other') : rule.category;
    action = rule.action === 'auto' ? byCode : rule.action;
  } else if (input.code === 'EAUTH') {
    // Our credentials for a smarthost were refused: fix the config, keep the mail (as Postfix does).
    category = 'other';
    action = 'defer';
  } else {
    category = fromStatus ?? 'other';
    action = byCode;
  }
  return {
    action,
    category,
    status: withClass(read.enhanced ? read.enhanced.slice(2) : CATEGORY_INFO[category].statusDetail, action),
    message: (input.code !== 'ETLS' && rule?.message) || CATEGORY_INFO[category].message,
    ...(rule && input.code !== 'ETLS' ? { rule: rule.id } : {}),
    ...(read.enhanced ? { remoteStatus: read.enhanced } : {}),
    responseCode: code,
    reply: read.text,
  };
}

const NETWORK_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EPIPE', 'ECONNABORTED', 'EADDRNOTAVAIL']);

/** An attempt that ended without a 4xx/5xx reply. */
function classifyError(input: ReplyInput): ReplyClass {
  const code = input.code ?? '';
  // The system code, or the one in the message ("queryMx ENOTFOUND example.test") when not given.
  const sys = input.originalCode ?? /\b(ENOTFOUND|ENODATA|ECONNREFUSED|ECONNRESET)\b/.exec(input.errorMessage ?? '')?.[1] ?? '';
  const phase = normalPhase(input.phase);
  const afterDot = phase === 'DOT' || (phase === 'DATA' && (code === 'ETIMEDOUT' || code === 'ECONNECTION'));
  const result = (action: ReplyClass['action'], category: ReplyCategory, detail: string, message: string): ReplyClass => ({
    action,
    category,
    status: withClass(detail, action),
    message,
  });

  if (code === 'EDNS' || sys === 'ENOTFOUND' || sys === 'ENODATA') {
    // NXDOMAIN and "no such record" are answers, not failures: the domain cannot take mail.
    if (sys === 'ENOTFOUND') return result('bounce', 'dns', '1.2', 'Recipient domain does not exist');
    if (sys === 'ENODATA') return result('bounce', 'dns', '4.4', 'Recipient domain has no mail server address');
    return result('defer', 'dns', '4.3', 'DNS lookup failed');
  }
  if (code === 'EREQUIRETLS') return result('bounce', 'tls', '7.10', 'REQUIRETLS was asked for and the server cannot do it'); // RFC 8689 §5
  if (code === 'ETLS') return result('defer', 'tls', '7.5', 'TLS failed');
  if (NETWORK_CODES.has(code) || NETWORK_CODES.has(sys)) {
    if (afterDot) {
      return result('defer', 'network', '4.2', 'Connection lost waiting for the reply to the message; it may have been delivered (possible duplicate)');
    }
    if (code === 'ECONNREFUSED' || sys === 'ECONNREFUSED') return result('defer', 'network', '4.1', 'Connection refused');
    if (['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN'].includes(sys || code)) return result('defer', 'network', '4.1', 'No route to host');
    if (code === 'ETIMEDOUT') return phase === 'CONN' || !phase ? result('defer', 'network', '4.1', 'Connection timed out') : result('defer', 'network', '4.2', 'Timed out waiting for the server');
    return result('defer', 'network', '4.2', sys === 'ECONNRESET' ? 'Connection reset' : 'Connection closed unexpectedly');
  }
  if (code === 'EMESSAGE' && /size larger than allowed/i.test(input.errorMessage ?? '')) {
    return result('bounce', 'message-size', '3.4', 'Message is larger than the server accepts (SIZE)');
  }
  if (code === 'EENVELOPE' && /invalid (recipient|sender)/i.test(input.errorMessage ?? '')) {
    return result('bounce', 'unknown-user', '1.3', 'Address is not valid for SMTP');
  }
  if (code === 'EPROTOCOL') return result('defer', 'protocol', '5.0', 'Unexpected reply from the server');
  if (code === 'EAUTH' || code === 'ENOAUTH') return result('defer', 'other', '7.8', 'Authentication to the server failed');
  return result('defer', 'other', '0.0', CATEGORY_INFO.other.message);
}

/** The phase names of the interface, from nodemailer's command names too. */
function normalPhase(phase: string | undefined): string {
  const p = (phase ?? '').trim().toUpperCase();
  if (p === 'EHLO' || p === 'LHLO') return 'HELO';
  if (p.startsWith('MAIL')) return 'MAIL';
  if (p.startsWith('RCPT')) return 'RCPT';
  return p;
}

/** '1.1' + bounce → '5.1.1'. */
function withClass(subjectDetail: string, action: ReplyClass['action']): string {
  return `${action === 'bounce' ? 5 : 4}.${subjectDetail}`;
}
