/**
 * What a delivery worker needs from the plugin system, in one place: load the `sender` plugins
 * from the config the master handed over, a HookRunner for the sender:* hooks, and the glue
 * between a job and the `Delivery` object hooks see. The worker makes three calls per job:
 *
 *   const prepared = await prepareDelivery(plugins.hooks, job);   // sender:fetch, sender:headers
 *   if ('results' in prepared) → report prepared.results (a hook refused or failed the delivery)
 *   else deliver prepared.job (envelope.from and headers as the hooks left them), and before
 *        each connection: await plugins.hooks.run('sender:connect', prepared.delivery, options)
 *        with options = { hostname, host, port, localAddress, localHostname }, then connect to
 *        what options says (a throw: that address failed, try the next)
 *   await notifyResults(plugins.hooks, prepared.delivery, results);  // sender:delivered / :responseError
 *
 * With no sender plugin, prepareDelivery returns the job as it is and no Delivery (nothing is
 * parsed), and the other calls do nothing.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { asSmtpError, SmtpError } from '../errors/smtp-error.js';
import type { parseHeaders as ParseHeaders } from '../message/headers.js';
import type { RowResult } from '../channel/protocol.js';
import type { Delivery, DeliveryFailure, SenderConnection } from './hooks.js';
import { loadPlugins, type LoadedPlugin } from './loader.js';
import { HookRunner } from './runner.js';

export interface SenderPlugins {
  /** the sender:* hooks; empty when no plugin is enabled for "sender" */
  readonly hooks: HookRunner;
  readonly plugins: readonly LoadedPlugin[];
  /** runs the plugins' onStop handlers; never throws */
  stop(): Promise<void>;
}

/** Loads every plugin enabled for "sender". Throws a PluginLoadError naming the plugin. */
export async function loadSenderPlugins(config: Config, logger: Logger): Promise<SenderPlugins> {
  const hooks = new HookRunner(logger.child({ component: 'hooks' }), config.hooks.timeout);
  const loaded = await loadPlugins({ config, process: 'sender', hooks, logger });
  // the header parser (libmime, mailsplit and their charset tables: ~15 MB of RSS) is needed
  // only to show hooks the headers: a worker without sender plugins never loads it
  if (loaded.plugins.length) parseHeaders ??= (await import('../message/headers.js')).parseHeaders;
  return { hooks, plugins: loaded.plugins, stop: () => loaded.stop() };
}

let parseHeaders: typeof ParseHeaders | undefined;

/** The fields of a job that hooks see (the channel's Job has them all). */
export interface JobForHooks {
  id: string;
  zone: string;
  domain: string;
  from: string;
  rows: readonly { seq: number; recipient: string }[];
  /** the stored header block, latin1 */
  headers: string;
  size: number;
  messageId: string;
  attempts: number;
}

/** A fresh Delivery for one job: its own parsed headers, so hooks never touch the job. */
export function deliveryForHooks(job: JobForHooks): Delivery {
  const recipients = job.rows.map((r) => Object.freeze({ seq: r.seq, recipient: r.recipient }));
  return {
    id: job.id,
    zone: job.zone,
    domain: job.domain,
    messageId: job.messageId,
    size: job.size,
    attempts: job.attempts,
    recipients: Object.freeze(recipients),
    envelope: { from: job.from, to: Object.freeze(recipients.map((r) => r.recipient)) },
    headers: headerParser()(Buffer.from(job.headers, 'latin1')),
  };
}

function headerParser(): typeof ParseHeaders {
  if (!parseHeaders) throw new Error('deliveryForHooks needs loadSenderPlugins to have loaded a sender plugin first');
  return parseHeaders;
}

/** What the hooks made of the delivery: the envelope sender and the header block (latin1) to send. */
export function deliveryChanges(delivery: Delivery): { from: string; headers: string } {
  const from = typeof delivery.envelope.from === 'string' ? delivery.envelope.from.replace(/[\r\n<>\s]/g, '') : '';
  return { from, headers: delivery.headers.build().toString('latin1') };
}

/**
 * The per-recipient result when a sender gate hook failed: a deliberate 5xx rejection bounces, a
 * 4xx defers, anything else (a crash, a timeout: logged by the runner) defers as 451 4.3.0.
 */
export function hookFailureResults(rows: readonly { seq: number }[], err: unknown, hook: string) {
  const e = asSmtpError(err, () => SmtpError.hookFailed());
  const outcome: 'bounced' | 'deferred' = e.responseCode >= 500 ? 'bounced' : 'deferred';
  return rows.map((r) => ({
    seq: r.seq,
    outcome,
    response: `${e.responseCode} ${e.enhancedStatus} ${e.message} (${hook})`,
    responseCode: e.responseCode,
    status: e.enhancedStatus,
    category: 'plugin',
  }));
}

/** Does any sender hook listen? Without one the worker skips building Delivery objects. */
export function hasSenderHooks(hooks: HookRunner): boolean {
  return (['sender:fetch', 'sender:headers', 'sender:connect', 'sender:delivered', 'sender:responseError'] as const).some((n) => hooks.has(n));
}

/**
 * Runs sender:fetch and sender:headers for a job. Returns the job with the hooks' changes
 * (envelope sender, header block) and the Delivery to pass to the later hooks, or the results
 * to report when a hook refused or failed the delivery.
 */
export async function prepareDelivery<J extends JobForHooks>(
  hooks: HookRunner,
  job: J,
): Promise<{ job: J; delivery: Delivery | undefined } | { results: ReturnType<typeof hookFailureResults> }> {
  if (!hasSenderHooks(hooks)) return { job, delivery: undefined };
  const delivery = deliveryForHooks(job);
  for (const hook of ['sender:fetch', 'sender:headers'] as const) {
    try {
      await hooks.run(hook, delivery);
    } catch (err) {
      return { results: hookFailureResults(job.rows, err, hook) };
    }
  }
  const { from, headers } = deliveryChanges(delivery);
  return { job: { ...job, from, headers }, delivery };
}

/** What the worker reports per recipient, as far as the hooks see it. */
export type ResultForHooks = Pick<RowResult, 'seq' | 'outcome' | 'response' | 'responseCode' | 'status' | 'category' | 'code' | 'mx' | 'localAddress' | 'tls'>;

/** sender:delivered for the accepted recipients, sender:responseError for the others. Never throws. */
export async function notifyResults(hooks: HookRunner, delivery: Delivery | undefined, results: readonly ResultForHooks[]): Promise<void> {
  if (!delivery) return;
  const recipientOf = new Map(delivery.recipients.map((r) => [r.seq, r.recipient]));
  const connectionOf = (r: ResultForHooks): SenderConnection | undefined =>
    r.mx ? { hostname: r.mx, ...(r.localAddress ? { localAddress: r.localAddress } : {}), tls: r.tls === true } : undefined;
  const delivered = results.filter((r) => r.outcome === 'delivered');
  const failed = results.filter((r): r is ResultForHooks & { outcome: 'deferred' | 'bounced' } => r.outcome !== 'delivered');
  if (delivered.length) {
    const first = delivered[0]!;
    await hooks.notify('sender:delivered', delivery, {
      response: first.response,
      accepted: delivered.map((r) => recipientOf.get(r.seq) ?? ''),
      rejected: failed.map((r) => recipientOf.get(r.seq) ?? ''),
      connection: connectionOf(first) ?? { hostname: delivery.domain, tls: first.tls === true },
    });
  }
  if (failed.length) {
    const first = failed[0]!;
    const err: DeliveryFailure = {
      message: first.response,
      ...(first.code ? { code: first.code } : {}),
      ...(first.responseCode !== undefined ? { responseCode: first.responseCode } : {}),
      response: first.response,
      results: failed.map((r) => ({ seq: r.seq, recipient: recipientOf.get(r.seq) ?? '', outcome: r.outcome, status: r.status, category: r.category })),
    };
    await hooks.notify('sender:responseError', delivery, connectionOf(first), err);
  }
}
