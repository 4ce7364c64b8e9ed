/**
 * What a delivery worker needs from the plugin system, in one place: load the `sender` plugins
 * from the config the master handed over, a HookRunner for the sender:* hooks, and the small
 * conversions between a job and the `Delivery` object hooks see.
 *
 * The calls the worker makes, in order, for one job (see plugins/README.md for the contract):
 *
 *   const delivery = deliveryForHooks(job);
 *   await plugins.hooks.run('sender:fetch', delivery);        // gate: throw → hookFailureResults
 *   await plugins.hooks.run('sender:headers', delivery);      // gate; then:
 *   const { from, headers } = deliveryChanges(delivery);       // sign and send these
 *   for each new connection:
 *     const options = { hostname, host, port, localAddress, localHostname };
 *     await plugins.hooks.run('sender:connect', delivery, options);   // gate; connect to options.*
 *   on success: void plugins.hooks.notify('sender:delivered', delivery, info);
 *   on failure: void plugins.hooks.notify('sender:responseError', delivery, connection, failure);
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { asSmtpError, SmtpError } from '../errors/smtp-error.js';
import { parseHeaders } from '../message/headers.js';
import type { Delivery } from './hooks.js';
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
  return { hooks, plugins: loaded.plugins, stop: () => loaded.stop() };
}

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
    headers: parseHeaders(Buffer.from(job.headers, 'latin1')),
  };
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
