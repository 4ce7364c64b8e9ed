/**
 * Delivers one job (one message, one domain, its recipients): find where to send it (static
 * route or MX), try the hosts in order until one takes the transaction, and turn every answer
 * into a per-recipient result for the master.
 *
 * What an error or a reply means (next host, delivered, deferred, bounced, with which status) is
 * the failure policy's (lib/deliver/failure-policy.ts); this file follows it:
 * - a failure that is the host's moves on to the next address or MX; when none is left the last
 *   failure is every recipient's result;
 * - a host that DANE or MTA-STS refuses (lib/deliver/tls/policy.ts) is skipped like an
 *   unreachable one, and so is a host a sender:connect plugin refuses or whose circuit is open;
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
import type { BounceRule } from '../bounce/classify.js';
import type { DestinationResolver, TargetHost } from './destination.js';
import { DeliveryError } from '../errors/delivery-error.js';
import { cancelledResults, deliveredVerdict, destinationVerdict, errorVerdicts, hostFailure, rejectionVerdict, type Verdict } from './failure-policy.js';
import { keysFor, type DkimKey } from './dkim/keys.js';
import { dkimSignaturesAsync, fromDomainOf } from './dkim/sign.js';
import { SmtpSession, type SessionOptions, type TlsPolicy, type TransactionResult } from './smtp-client.js';
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
  const reason = signal.reason instanceof Error ? signal.reason.message : 'by the worker';
  return cancelledResults(job.rows.map((row) => row.seq), results, reason);
}

async function deliverRows(job: Job, ctx: DeliveryContext, session: { kept: boolean }, delivery: Delivery | undefined, signal?: AbortSignal): Promise<RowResult[]> {
  const { config, zone } = ctx;
  const route = config.routes[job.domain] ?? ctx.localRoute?.(job.domain) ?? zone.route;
  let hosts: TargetHost[];
  try {
    hosts = await ctx.resolver.resolve(job.domain, route);
  } catch (err) {
    return allRows(job, destinationVerdict(err, job.domain));
  }
  if (!hosts.length) return allRows(job, destinationVerdict(undefined, job.domain));

  const tls = tlsPolicyFor(job.domain, config, zone, route?.tls);
  const explicit = Object.hasOwn(config.tlsPolicies, job.domain);
  const discovery = ctx.discovery ?? {};
  const sts = await domainStsPolicy(job, tls, explicit, route !== undefined, discovery);
  const pool = pickPool(job, zone, config.hostname);
  let last: DeliveryError | undefined;
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
          last = DeliveryError.unreachable(`sender:connect refused ${host.host} [${resolved.address}]: ${(err as Error).message}`);
          continue;
        }
      }
      const address = target.host;
      const port = target.port;
      if (ctx.circuit.isOpen(address, port)) {
        last = DeliveryError.unreachable(`${target.hostname} [${address}]:${port} failed recently; not trying it again yet`);
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
        last = err instanceof DeliveryError ? err : new DeliveryError(err instanceof Error ? err.message : String(err), { code: 'EUNKNOWN' }, { cause: err });
        if (decision.dane && last.originalCode === 'DANE_MISMATCH') {
          ctx.logger.warn({ event: 'DANE_FAILED', id: job.id, domain: job.domain, mx: host.host, address, err: last.message }, last.message);
        }
        const scope = hostFailure(last);
        if (scope.holdHost) ctx.circuit.trip(address, port);
        if (!scope.nextHost) return labelled(rows(job, errorVerdicts(last, recipients(job), ctx.bounceRules), host.host, target.localAddress), decision);
        ctx.logger.debug({ id: job.id, mx: host.host, address, err: last.message }, 'host failed before the transaction, trying the next');
      }
    }
  }
  const mx = hosts[hosts.length - 1]?.host ?? job.domain;
  const final = errorVerdicts(last ?? DeliveryError.unreachable('no host could be reached'), recipients(job), ctx.bounceRules, true);
  const out = rows(job, final, mx, pool.address);
  return lastLabel ? labelled(out, { label: lastLabel }) : out;
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
      if (!(err instanceof DeliveryError && err.staleSession)) throw err;
    }
  }
  session = await SmtpSession.open(options, signal);
  const body = bodyStream(job, ctx);
  const result = await session.send(envelope, body.stream, () => body.finished, false, signal);
  return { ...result, kept: ctx.sessions.give(session) };
}

function allRows(job: Job, verdict: Verdict): RowResult[] {
  return job.rows.map((row) => ({ seq: row.seq, ...verdict }));
}

function recipients(job: Job): string[] {
  return job.rows.map((row) => row.recipient);
}

/** The policy's verdicts (one per row, in order) as the rows' results from `mx`. */
function rows(job: Job, verdicts: readonly Verdict[], mx: string, localAddress: string | undefined): RowResult[] {
  return job.rows.map((row, i) => ({ seq: row.seq, ...verdicts[i]!, mx, localAddress }));
}

/** A transaction that went through: each recipient delivered unless the server refused it at RCPT. */
function mapResult(job: Job, result: TransactionResult, host: TargetHost, localAddress: string | undefined, ctx: DeliveryContext): RowResult[] {
  const rejected = new Map(result.rejected.map((r) => [r.recipient.toLowerCase(), r]));
  const verdicts = job.rows.map((row) => {
    const rej = rejected.get(row.recipient.toLowerCase());
    return rej ? rejectionVerdict(rej, result.tls, ctx.bounceRules) : deliveredVerdict(result.response, result.tls);
  });
  return rows(job, verdicts, host.host, localAddress);
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
      if (!chunk) throw new BodyIncompleteError(`body of ${job.id} is incomplete in the queue`);
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

/** Fails the message stream; the SMTP client reports it as its own stream error (ESTREAM) with
 * this code underneath. */
class BodyIncompleteError extends Error {
  readonly code = 'EMESSAGE';
}
