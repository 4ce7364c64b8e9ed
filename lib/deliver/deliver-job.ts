/**
 * Delivers one job (one message, one domain, its recipients): find where to send it (static
 * route or MX), try the hosts in order until one takes the transaction, and turn every answer
 * into a per-recipient result for the master.
 *
 * Failure policy (what moves to the next host and what ends the attempt) is here, in one place:
 * - could not connect, no greeting, failed TLS handshake, 4xx/5xx greeting or EHLO → next address
 *   or next MX (RFC 5321 §5.1: try the alternatives);
 * - once MAIL FROM is sent, the answer is the answer: 2xx delivered, 4xx deferred, 5xx bounced,
 *   by the reply classification rules (lib/bounce), per recipient where the server answered per
 *   recipient;
 * - the connection lost after the whole message was sent, before the reply: deferred and marked
 *   `uncertain` (the message may have arrived: RFC 1047's window; at-least-once);
 * - a host that DANE or MTA-STS refuses (lib/deliver/tls/policy.ts), or whose certificate fails
 *   them, is skipped like an unreachable one; with no host left the delivery is deferred as a TLS
 *   failure (4.7.5), never sent without the protection the destination asked for;
 * - the attempt as a whole ends when its signal aborts (delivery.attemptTimeout, or the master
 *   cancelling an expired lease): the connection in use is closed, no further host is tried, and
 *   every recipient not yet delivered is deferred with a reply that says why. The per-host
 *   timeouts add up over MX hosts and addresses; only this bounds the whole.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config, ZoneConfig } from '../config/schema.js';
import type { StaticRoute } from '../zones/local-route.js';
import type { Job, RowResult } from '../channel/protocol.js';
import { classifyReply, type BounceRule } from '../bounce/classify.js';
import { DestinationError, type DestinationResolver, type TargetHost } from './destination.js';
import { keysFor, type DkimKey } from './dkim/keys.js';
import { dkimSignaturesAsync, fromDomainOf } from './dkim/sign.js';
import { SmtpSession, type SessionOptions, type TlsPolicy, type TransactionError, type TransactionResult } from './smtp-client.js';
import type { SessionPool } from './session-pool.js';
import type { Circuit } from './circuit.js';
import type { HookRunner } from '../plugins/runner.js';
import type { ConnectOptions, Delivery } from '../plugins/hooks.js';
import { domainStsPolicy, hostTls, reportTesting, type HostTls, type TlsDiscovery, type TlsLabel } from './tls/policy.js';

export interface DeliveryContext {
  config: Config;
  zone: ZoneConfig;
  resolver: DestinationResolver;
  dkimKeys: readonly DkimKey[];
  bounceRules: BounceRule[];
  circuit: Circuit;
  sessions: SessionPool;
  /** the sender:* plugin hooks (empty when no sender plugin is enabled) */
  hooks: HookRunner;
  /** the route to the local inbound receiver for its domains (absent: none) */
  localRoute?: (domain: string) => StaticRoute | undefined;
  /** DANE and MTA-STS lookups (both absent: the configured TLS policy alone) */
  discovery?: TlsDiscovery;
  /** trusted CAs when the operator added some (delivery.ca); else node's own */
  ca?: readonly string[];
  logger: Logger;
  /** pulls one stored body chunk from the master (in one or more parts); undefined after the last */
  chunk(id: string, n: number): Promise<readonly Buffer[] | undefined>;
}

/** Phases before MAIL FROM: a failure there means "try the next host". */
const PRE_TRANSACTION = new Set(['CONN', 'GREETING', 'EHLO', 'HELO', 'STARTTLS', undefined]);

export interface DeliveryOutcome {
  results: RowResult[];
  /** the session went back to the pool for the next message to that host (the master counts it
   * as a connection to the domain while it is idle) */
  keptSession: boolean;
}

/** After an abort, how long the attempt may take to come back with its own results (its
 * connection was closed, so it fails at once unless it waits on something else, like DNS). */
const ABORT_GRACE_MS = 1000;

export async function deliverJob(job: Job, ctx: DeliveryContext, delivery?: Delivery, signal?: AbortSignal): Promise<DeliveryOutcome> {
  const session = { kept: false };
  const attempt = deliverRows(job, ctx, session, delivery, signal);
  if (!signal) return { results: await attempt, keptSession: session.kept };
  const first = await Promise.race([attempt.then((results) => ({ results })), aborted(signal)]);
  if ('results' in first) return { results: first.results, keptSession: session.kept };
  // cancelled first: take the attempt's own results if they come at once (a row delivered just
  // now stays delivered), else defer every row
  const late = await Promise.race([attempt, new Promise<undefined>((r) => setTimeout(() => r(undefined), ABORT_GRACE_MS).unref())]);
  return { results: cancelled(job, late, signal), keptSession: false };
}

/** Resolves when `signal` aborts (at once if it has). */
export function aborted(signal: AbortSignal): Promise<{ aborted: true }> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve({ aborted: true });
    else signal.addEventListener('abort', () => resolve({ aborted: true }), { once: true });
  });
}

/** The results of a cancelled attempt: delivered rows as they were, every other one deferred. */
export function cancelled(job: Job, results: RowResult[] | undefined, signal: AbortSignal): RowResult[] {
  const why = `delivery attempt cancelled: ${signal.reason instanceof Error ? signal.reason.message : 'by the worker'}`;
  const own = new Map((results ?? []).map((r) => [r.seq, r]));
  return job.rows.map((row) => {
    const r = own.get(row.seq);
    if (r?.outcome === 'delivered') return r;
    const last = r && !r.response.includes('delivery attempt cancelled') ? `; last reply: ${r.response}` : '';
    return { ...r, seq: row.seq, outcome: 'deferred', response: `${why}${last}`, status: '4.4.2', category: 'network', code: 'ETIMEDOUT' };
  });
}

async function deliverRows(job: Job, ctx: DeliveryContext, session: { kept: boolean }, delivery: Delivery | undefined, signal?: AbortSignal): Promise<RowResult[]> {
  const { config, zone } = ctx;
  const route = config.routes[job.domain] ?? ctx.localRoute?.(job.domain) ?? zone.route;
  let hosts: TargetHost[];
  try {
    hosts = await ctx.resolver.resolve(job.domain, route);
  } catch (err) {
    const e = err as DestinationError;
    const temporary = e instanceof DestinationError ? e.temporary : true;
    return allRows(job, {
      outcome: temporary ? 'deferred' : 'bounced',
      response: e.message,
      status: e instanceof DestinationError ? e.enhancedStatus : '4.4.3',
      category: 'dns',
      code: 'EDNS',
    });
  }
  if (!hosts.length) return allRows(job, { outcome: 'deferred', response: `no usable address for ${job.domain}`, status: '4.4.4', category: 'dns', code: 'EDNS' });

  const tls = tlsPolicyFor(job.domain, config, zone, route?.tls);
  const explicit = Object.hasOwn(config.tlsPolicies, job.domain);
  const discovery = ctx.discovery ?? {};
  const sts = await domainStsPolicy(job, tls, explicit, route !== undefined, discovery);
  const pool = pickPool(job, zone, config.hostname);
  let last: TransactionError | undefined;
  let lastLabel: TlsLabel | undefined;
  for (const host of hosts) {
    if (signal?.aborted) break;
    const decision = await hostTls(job, host, tls, explicit, sts, discovery, ctx.logger);
    lastLabel = decision.label;
    if ('refused' in decision) {
      last = decision.refused;
      continue;
    }
    for (const resolved of host.addresses) {
      if (signal?.aborted) break;
      // sender:connect may send this connection elsewhere (another MX, port or local address)
      const target: ConnectOptions = { hostname: host.host, host: resolved.address, port: host.port, localAddress: pool.address, localHostname: pool.name };
      if (delivery) {
        try {
          await ctx.hooks.run('sender:connect', delivery, target);
        } catch (err) {
          last = Object.assign(new Error(`sender:connect refused ${host.host} [${resolved.address}]: ${(err as Error).message}`), { code: 'ECONNECTION', connected: false, dataSent: false, tls: false });
          continue;
        }
      }
      const address = target.host;
      const port = target.port;
      if (ctx.circuit.isOpen(address, port)) {
        last = Object.assign(new Error(`${target.hostname} [${address}]:${port} failed recently; not trying it again yet`), { code: 'ECONNECTION', connected: false, dataSent: false, tls: false });
        continue;
      }
      const options: SessionOptions = {
        address,
        port,
        hostname: target.hostname,
        localAddress: target.localAddress,
        heloName: target.localHostname,
        tls: decision.tls,
        ...(decision.dane ? { dane: decision.dane } : {}),
        ...(ctx.ca ? { ca: ctx.ca } : {}),
        connectTimeoutMs: config.delivery.connectTimeout,
        greetingTimeoutMs: config.delivery.greetingTimeout,
        socketTimeoutMs: config.delivery.socketTimeout,
      };
      try {
        const result = await transact(job, options, ctx, signal);
        session.kept = result.kept;
        ctx.circuit.reset(address, port);
        if (decision.testing) reportTesting(ctx.logger, job, host.host, decision.testing, result.tls, result.peer);
        return labelled(mapResult(job, result, host, target.localAddress, ctx), decision);
      } catch (err) {
        last = err as TransactionError;
        if (decision.dane && last.originalCode === 'DANE_MISMATCH') {
          ctx.logger.warn({ event: 'DANE_FAILED', id: job.id, domain: job.domain, mx: host.host, address, err: last.message }, last.message);
        }
        // a host that did not answer is held back for a while; one whose certificate failed our
        // policy is not unreachable (other domains with another policy may use it at once)
        if (!last.connected && !isTlsFailure(last) && (last.code === 'ECONNECTION' || last.code === 'ETIMEDOUT' || last.code === 'ESOCKET')) ctx.circuit.trip(address, port);
        const phase = phaseOf(last);
        if (last.connected && !PRE_TRANSACTION.has(phase)) {
          return labelled(mapError(job, last, host, target.localAddress, ctx), decision);
        }
        ctx.logger.debug({ id: job.id, mx: host.host, address, err: last.message }, 'host failed before the transaction, trying the next');
      }
    }
  }
  const mx = hosts[hosts.length - 1]?.host;
  const rows = mapError(job, last ?? Object.assign(new Error('no host could be reached'), { connected: false, dataSent: false, tls: false, code: 'ECONNECTION' }), { host: mx ?? job.domain } as TargetHost, pool.address, ctx, true);
  return lastLabel ? labelled(rows, { label: lastLabel }) : rows;
}

/** Which TLS rules applied (dane, mta-sts, … or the configured policy): for the log and the result. */
function labelled(rows: RowResult[], decision: Pick<HostTls, 'label'>): RowResult[] {
  return rows.map((r) => ({ ...r, tlsPolicy: decision.label }));
}

/** One transaction on a pooled session if there is one (a stale one is replaced once), else on a new session. */
async function transact(job: Job, options: SessionOptions, ctx: DeliveryContext, signal?: AbortSignal): Promise<TransactionResult & { kept: boolean }> {
  const envelope = { from: job.from, to: job.rows.map((r) => r.recipient), size: job.size };
  let session = ctx.sessions.take(options);
  if (session) {
    const body = bodyStream(job, ctx);
    try {
      const result = await session.send(envelope, body.stream, () => body.finished, true, signal);
      return { ...result, kept: ctx.sessions.give(session) };
    } catch (err) {
      if (!(err as TransactionError).staleSession) throw err;
    }
  }
  session = await SmtpSession.open(options, signal);
  const body = bodyStream(job, ctx);
  const result = await session.send(envelope, body.stream, () => body.finished, false, signal);
  return { ...result, kept: ctx.sessions.give(session) };
}

function allRows(job: Job, r: Omit<RowResult, 'seq'>): RowResult[] {
  return job.rows.map((row) => ({ seq: row.seq, ...r }));
}

function phaseOf(err: TransactionError): string | undefined {
  const cmd = (err.command ?? '').toUpperCase();
  if (!err.connected) return 'CONN';
  if (err.code === 'ETLS' || cmd.startsWith('STARTTLS')) return 'STARTTLS';
  if (cmd.startsWith('EHLO') || cmd.startsWith('HELO') || cmd.startsWith('LHLO')) return 'EHLO';
  if (cmd.startsWith('MAIL')) return 'MAIL';
  if (cmd.startsWith('RCPT')) return 'RCPT';
  if (cmd.startsWith('DATA')) return 'DATA';
  if (err.dataSent) return 'DOT';
  if (err.code === 'EENVELOPE') return 'RCPT';
  if (err.code === 'EMESSAGE' || err.code === 'EPROTOCOL') return 'DATA';
  return cmd ? cmd.split(' ')[0] : undefined;
}

function mapResult(job: Job, result: { accepted: string[]; rejected: { recipient: string; responseCode?: number; response: string }[]; response: string; tls: boolean }, host: TargetHost, localAddress: string | undefined, ctx: DeliveryContext): RowResult[] {
  const rejected = new Map(result.rejected.map((r) => [r.recipient.toLowerCase(), r]));
  return job.rows.map((row) => {
    const rej = rejected.get(row.recipient.toLowerCase());
    if (!rej) return { seq: row.seq, outcome: 'delivered', response: result.response, responseCode: 250, mx: host.host, localAddress, tls: result.tls };
    const c = classifyReply({ responseCode: rej.responseCode, response: rej.response, phase: 'RCPT' }, ctx.bounceRules);
    return { seq: row.seq, outcome: c.action === 'bounce' ? 'bounced' : 'deferred', response: rej.response, responseCode: rej.responseCode, status: c.status, category: c.category, mx: host.host, localAddress, tls: result.tls };
  });
}

function mapError(job: Job, err: TransactionError, host: TargetHost, localAddress: string | undefined, ctx: DeliveryContext, unreachable = false): RowResult[] {
  const phase = unreachable ? 'CONN' : phaseOf(err);
  const rejectedErrors = (err as { rejectedErrors?: { recipient?: string; responseCode?: number; response?: string; message?: string }[] }).rejectedErrors;
  const perRecipient = new Map<string, { responseCode?: number; response: string }>();
  if (err.code === 'EENVELOPE' && rejectedErrors?.length) {
    for (const e of rejectedErrors) if (e.recipient) perRecipient.set(e.recipient.toLowerCase(), { responseCode: e.responseCode, response: e.response ?? e.message ?? 'rejected' });
  }
  // a connection lost after the whole message went out: it may have arrived
  const uncertain = err.dataSent && !err.responseCode;
  // STARTTLS refused or failed while the policy needs TLS ("encrypt", "verify"): the server may
  // offer it tomorrow; it is never a reason to bounce. The reply classification alone said
  // "bounce" for "500 command not recognized" to a STARTTLS nobody had offered (F13).
  const tlsFailure = isTlsFailure(err);
  return job.rows.map((row) => {
    const own = perRecipient.get(row.recipient.toLowerCase());
    const responseCode = own?.responseCode ?? err.responseCode;
    const response = own?.response ?? err.response ?? `${err.code ?? 'ERROR'}: ${err.message}`;
    // the system error under nodemailer's own code tells a refused connection from a reset one
    const originalCode = (err as { originalCode?: string }).originalCode ?? /\b(ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ENETUNREACH)\b/.exec(err.message)?.[1];
    const c = classifyReply({ responseCode, response, code: err.code, phase, originalCode, errorMessage: err.message }, ctx.bounceRules);
    const outcome = uncertain || tlsFailure ? 'deferred' : c.action === 'bounce' ? 'bounced' : 'deferred';
    // a certificate our policy refused is a TLS failure (4.7.5), not a network one (4.4.2); a
    // server's own 4xx reply to STARTTLS keeps its code
    const status = tlsFailure && (!c.status.startsWith('4.') || !responseCode) ? '4.7.5' : c.status;
    const category = tlsFailure ? 'tls' : c.category;
    return { seq: row.seq, outcome, response, responseCode, status, category, code: err.code, mx: host.host, localAddress, tls: err.tls, ...(uncertain ? { uncertain: true } : {}) };
  });
}

/** STARTTLS refused or failed, or a certificate our policy does not accept (nodemailer reports
 * the latter as ESOCKET with the TLS code underneath). */
function isTlsFailure(err: TransactionError): boolean {
  return err.code === 'ETLS' || /^ERR_(TLS|SSL)_|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(err.originalCode ?? '');
}

export function tlsPolicyFor(domain: string, config: Config, zone: ZoneConfig, routeTls?: string): TlsPolicy {
  return (config.tlsPolicies[domain] ?? routeTls ?? zone.tls ?? config.delivery.tls) as TlsPolicy;
}

/**
 * The local address and HELO name from the zone's pool. The same delivery keeps the same address
 * across retries (greylisting is keyed on it), unless the last failure said that address is
 * blocklisted: then each retry moves on to the next one.
 */
export function pickPool(job: Job, zone: ZoneConfig, hostname: string): { address?: string; name: string } {
  if (!zone.pool.length) return { name: hostname };
  const base = createHash('sha1').update(`${job.id}:${job.domain}`).digest().readUInt32BE(0);
  const shift = job.lastCategory === 'blocklist' ? job.attempts : 0;
  const entry = zone.pool[(base + shift) % zone.pool.length]!;
  return { address: entry.address, name: entry.name };
}

/**
 * The message as it goes out: DKIM signatures, the stored headers, then the body pulled chunk by
 * chunk from the master as the SMTP connection asks for it (bounded memory, no re-read to sign).
 */
function bodyStream(job: Job, ctx: DeliveryContext): { stream: Readable; readonly finished: boolean } {
  const state = { finished: false };
  const keys = ctx.dkimKeys.length ? keysFor(fromDomainOf(job.headers) ?? '', ctx.dkimKeys) : [];
  async function* gen(): AsyncGenerator<Buffer> {
    // signed after the headers were normalised at accept, over the exact bytes that go out
    if (keys.length) yield Buffer.from(await dkimSignaturesAsync(job.headers, job.bodyHash, keys), 'latin1');
    yield Buffer.from(job.headers, 'latin1');
    for (let n = 0; n < job.chunks; n++) {
      const chunk = await ctx.chunk(job.id, n);
      // a body that ends early (deleted meanwhile) must never go out truncated: failing the
      // stream aborts DATA before the final dot, so the server discards what it got
      if (!chunk) throw Object.assign(new Error(`body of ${job.id} is incomplete in the queue`), { code: 'EMESSAGE' });
      yield* chunk;
    }
    state.finished = true;
  }
  return {
    stream: Readable.from(gen(), { objectMode: false }),
    get finished() {
      return state.finished;
    },
  };
}
