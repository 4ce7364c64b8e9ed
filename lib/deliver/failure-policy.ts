/**
 * The delivery failure policy: what an attempt's error or reply means for each recipient —
 * delivered, deferred (tried again by the backoff schedule) or bounced (a DSN to the sender) —
 * with the category and the enhanced status that go into the row, the log, the DSN and the
 * webhook; and, for an error on one host, whether the next host is tried. Pure: no I/O, no
 * clock; deliver-job and the queue's outcomes call it, the table in
 * test/deliver/failure-policy.test.ts runs every rule.
 *
 * Scope (after Postfix's smtp_trouble.c, which tells a site failure from a recipient one):
 * - host: could not connect, no greeting, a 4xx/5xx greeting or EHLO, STARTTLS refused or
 *   failed, a certificate our TLS rules refuse → the next address or MX is tried (RFC 5321 §5.1).
 *   Only when no host is left does it become every recipient's result, classified as a
 *   connection-stage failure.
 * - transaction: from MAIL FROM on, the answer is the answer; a refusal at RCPT is per recipient.
 *
 * Action, first rule that applies:
 * 1. the whole message went out and the connection was lost before the reply → deferred and
 *    `uncertain` (it may have arrived: RFC 1047's window; we deliver at least once);
 * 2. a TLS failure (STARTTLS refused or failed, a certificate DANE or MTA-STS refuses) → deferred
 *    as 'tls', 4.7.5 unless the server's own 4xx reply says otherwise: the destination may offer
 *    TLS tomorrow, and mail is never sent without the protection asked for;
 * 3. otherwise the reply classification (lib/bounce/classify.ts, rules as data): 4xx and network
 *    faults defer, 5xx bounce, some replies by their text (blocklists defer whatever the code);
 * 4. a deferral past the queue lifetime is a bounce, 4.4.7 (Postfix's maximal_queue_lifetime).
 * The class digit of the status always agrees with the action (RFC 3464 §2.3.4).
 */
import type { RowResult } from '../channel/protocol.js';
import { classifyReply, type BounceRule } from '../bounce/classify.js';
import type { DeliveryError, SmtpPhase } from '../errors/delivery-error.js';
import { DestinationError } from './destination.js';

/** A recipient's result without where it went (deliver-job adds mx, local address, TLS label). */
export type Verdict = Omit<RowResult, 'seq' | 'mx' | 'localAddress' | 'tlsPolicy' | 'durationMs'>;

/** The steps before MAIL FROM: a failure there is the host's, and the next one is tried. */
const HOST_PHASES: ReadonlySet<SmtpPhase> = new Set(['CONN', 'EHLO', 'STARTTLS']);

/** Codes of a host that did not answer at all. */
const UNANSWERED = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET']);

/** What a failure on one host means for the attempt. */
export interface HostFailure {
  /** the failure is the host's: try the next address or MX */
  nextHost: boolean;
  /** the host did not answer: hold it back a while for every delivery (the circuit); a host whose
   * certificate failed our rules is not held (another domain with another policy may use it) */
  holdHost: boolean;
}

export function hostFailure(err: DeliveryError): HostFailure {
  return {
    nextHost: !err.connected || HOST_PHASES.has(err.phase),
    holdHost: !err.connected && !isTlsFailure(err) && UNANSWERED.has(err.code),
  };
}

/** STARTTLS refused or failed, or a certificate our rules refuse (nodemailer reports the latter
 * as ESOCKET with the TLS code underneath). */
export function isTlsFailure(err: DeliveryError): boolean {
  return err.code === 'ETLS' || /^ERR_(TLS|SSL)_|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(err.originalCode ?? '');
}

/**
 * Each recipient's result for an attempt that ended in `err`. `exhausted`: no host took the
 * transaction and this was the last failure, so it is judged as a connection-stage one.
 */
export function errorVerdicts(err: DeliveryError, recipients: readonly string[], rules: BounceRule[] | undefined, exhausted = false): Verdict[] {
  // before the session was up every failure counts as the connection's (a timeout is a
  // connection timeout, not a slow reply to a command)
  const phase: SmtpPhase = exhausted || !err.connected ? 'CONN' : err.phase;
  const own = new Map(err.code === 'EENVELOPE' ? err.rejected.map((r) => [r.recipient.toLowerCase(), r]) : []);
  const uncertain = err.dataSent && !err.responseCode;
  const tlsFailure = isTlsFailure(err);
  // the system error under the client's code tells a refused connection from a reset one
  const originalCode = err.originalCode ?? /\b(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH)\b/.exec(err.message)?.[1];
  return recipients.map((recipient) => {
    const reply = own.get(recipient.toLowerCase());
    const responseCode = reply?.responseCode ?? err.responseCode;
    const response = reply?.response ?? err.response ?? `${err.code}: ${err.message}`;
    const c = classifyReply({ responseCode, response, code: err.code, phase, originalCode, errorMessage: err.message }, rules);
    const outcome = uncertain || tlsFailure ? 'deferred' : c.action === 'bounce' ? 'bounced' : 'deferred';
    // a certificate our rules refused is a TLS failure (4.7.5), not a network one (4.4.2); a
    // server's own 4xx reply to STARTTLS keeps its code
    const status = tlsFailure && (!c.status.startsWith('4.') || !responseCode) ? '4.7.5' : c.status;
    const category = tlsFailure ? 'tls' : c.category;
    return { outcome, response, responseCode, status, category, code: err.code, tls: err.tls, ...(uncertain ? { uncertain: true } : {}) };
  });
}

/** A recipient the server refused at RCPT in a transaction that went through for others. */
export function rejectionVerdict(reply: { responseCode?: number; response: string }, tls: boolean, rules: BounceRule[] | undefined): Verdict {
  const c = classifyReply({ responseCode: reply.responseCode, response: reply.response, phase: 'RCPT' }, rules);
  return { outcome: c.action === 'bounce' ? 'bounced' : 'deferred', response: reply.response, responseCode: reply.responseCode, status: c.status, category: c.category, tls };
}

/** A recipient the server took. */
export function deliveredVerdict(response: string, tls: boolean): Verdict {
  return { outcome: 'delivered', response, responseCode: 250, tls };
}

/** No host to try: the destination could not be resolved (lib/deliver/destination.ts decides
 * temporary or permanent), or it resolved to nothing usable. */
export function destinationVerdict(err: unknown, domain: string): Verdict {
  if (err === undefined) return { outcome: 'deferred', response: `no usable address for ${domain}`, status: '4.4.4', category: 'dns', code: 'EDNS' };
  const known = err instanceof DestinationError;
  return {
    outcome: known && !err.temporary ? 'bounced' : 'deferred',
    response: err instanceof Error ? err.message : String(err),
    status: known ? err.enhancedStatus : '4.4.3',
    category: 'dns',
    code: 'EDNS',
  };
}

/** The attempt was cancelled (its time ran out, or its lease): each recipient delivered stays
 * so, every other one is deferred with a reply that says why and what the server last said. */
export function cancelledResults(seqs: readonly number[], results: readonly RowResult[] | undefined, reason: string): RowResult[] {
  const why = `delivery attempt cancelled: ${reason}`;
  const own = new Map((results ?? []).map((r) => [r.seq, r]));
  return seqs.map((seq) => {
    const r = own.get(seq);
    if (r?.outcome === 'delivered') return r;
    const last = r && !r.response.includes('delivery attempt cancelled') ? `; last reply: ${r.response}` : '';
    return { ...r, seq, outcome: 'deferred', response: `${why}${last}`, status: '4.4.2', category: 'network', code: 'ETIMEDOUT' };
  });
}

/** Rule 4: a deferral recorded `nowMs` for a delivery created at `createdMs` is a bounce once the
 * queue lifetime is over; any other result is recorded as it is. */
export function expireIfDue(result: RowResult, createdMs: number, nowMs: number, maxQueueTimeMs: number): RowResult {
  if (result.outcome !== 'deferred' || !isExpired(nowMs, createdMs, maxQueueTimeMs)) return result;
  return { ...result, outcome: 'bounced', status: result.status?.startsWith('4') || !result.status ? '4.4.7' : result.status, response: `delivery time expired; last error: ${result.response}` };
}

export function isExpired(nowMs: number, createdMs: number, maxQueueTimeMs: number): boolean {
  return nowMs - createdMs >= maxQueueTimeMs;
}
