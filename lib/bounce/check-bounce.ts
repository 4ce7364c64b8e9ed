/**
 * `sluice check-bounce`: shows how a reply would be classified, so an operator can test a reply
 * from a log line against the rules (and a rule they are writing) before mail depends on it.
 * The reply comes from --response or stdin (a multi-line reply as the server sent it is fine);
 * --code classifies a connection-level error (ECONNREFUSED, ETIMEDOUT, EDNS, ...) instead.
 */
import { BounceRuleError, classifyReply, loadBounceRules, type ReplyClass } from './classify.js';

export interface CheckBounceOptions {
  response?: string;
  code?: string;
  phase?: string;
  /** a rules file instead of the one shipped */
  rules?: string;
  json?: boolean;
}

export interface CheckBounceIo {
  readStdin(): string;
  out(line: string): void;
  err(line: string): void;
}

/** Returns the exit code. */
export function checkBounce(opts: CheckBounceOptions, io: CheckBounceIo): number {
  let rules;
  try {
    rules = loadBounceRules(opts.rules);
  } catch (err) {
    if (!(err instanceof BounceRuleError)) throw err;
    for (const p of err.problems) io.err(`sluice check-bounce: ${p}`);
    return 1;
  }
  const response = (opts.response ?? (opts.code ? '' : io.readStdin())).replace(/\r\n?/g, '\n').trim();
  if (!response && !opts.code) {
    io.err('sluice check-bounce: no reply given (pipe one to stdin, or use --response "550 5.1.1 ..." or --code ECONNREFUSED)');
    return 1;
  }
  const code = opts.code?.toUpperCase();
  const input = {
    ...(response ? { response } : {}),
    // a system code (ECONNREFUSED, ENOTFOUND) goes where nodemailer puts it
    ...(code ? (['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ENODATA', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code) ? { code: code === 'ENOTFOUND' || code === 'ENODATA' ? 'EDNS' : 'ESOCKET', originalCode: code } : { code }) : {}),
    ...(opts.phase ? { phase: opts.phase } : {}),
  };
  const result = classifyReply(input, rules);
  const rule = rules.find((r) => r.id === result.rule);
  if (opts.json) {
    io.out(JSON.stringify({ ...result, ...(rule ? { matchedRule: { id: rule.id, category: rule.category, action: rule.action, pattern: String(rule.pattern) } } : {}) }, null, 2));
    return 0;
  }
  io.out(`action:   ${result.action}`);
  io.out(`category: ${result.category}`);
  io.out(`status:   ${result.status}${result.remoteStatus && result.remoteStatus !== result.status ? `  (the remote said ${result.remoteStatus})` : ''}`);
  io.out(`message:  ${result.message}`);
  io.out(`rule:     ${rule ? `${rule.id}  ${rule.category} ${rule.action} ${String(rule.pattern)}` : noRule(result)}`);
  if (result.reply) io.out(`reply:    ${result.reply}`);
  return 0;
}

function noRule(result: ReplyClass): string {
  if (result.responseCode === undefined) return '(none: an error without a reply, classified by its code)';
  const by = result.remoteStatus ? `, category from the enhanced status ${result.remoteStatus}` : '';
  return `(none: ${result.responseCode >= 500 ? '5xx bounces' : '4xx defers'}${by})`;
}
