/**
 * The delivery worker's composition root: given its zone, id, secret and the config by the
 * master over IPC, it loads its DKIM keys, connects the data channel and runs the delivery loop.
 * It exits when the channel closes (it never outlives its master) or when told to stop.
 */
import type { Config } from '../config/schema.js';
import { ChannelClient } from '../channel/client.js';
import { loadBounceRules } from '../bounce/classify.js';
import { DestinationResolver } from '../deliver/destination.js';
import { WireResolver } from '../deliver/tls/dns-wire.js';
import { TlsaResolver } from '../deliver/tls/dane.js';
import { MtaStsResolver } from '../deliver/tls/mta-sts.js';
import { loadExtraCa, trustList } from '../deliver/tls/trust.js';
import { loadDkimKeys } from '../deliver/dkim/keys.js';
import { loadSenderPlugins, type SenderPlugins } from '../plugins/worker-plugins.js';
import { Circuit } from '../deliver/circuit.js';
import { SessionPool, throttleGapMs } from '../deliver/session-pool.js';
import { WorkerLoop } from '../deliver/worker-loop.js';
import { localRouter, type LocalRoute } from '../zones/local-route.js';
import { createLogger, type LogFormat } from '../log/logger.js';
import { warnUntestedLibraries } from '../pinned/internals.js';
import { installWorkerPatches } from '../pinned/install.js';
import { GcNudge } from './gc-nudge.js';

export interface WorkerInit {
  type: 'init';
  config: Config;
  zone: string;
  workerId: string;
  secret: string;
  channel: { host: string; port: number };
  /** the local inbound receiver, where mail for its domains goes (see Inbound.localRoute) */
  localRoute?: LocalRoute;
}

/** Resolves with the exit code once the worker is done. */
export async function runWorker(init: WorkerInit, stopSignal: Promise<void>): Promise<number> {
  const { config, zone } = init;
  const logger = createLogger(config.log.level, { role: 'worker', zone, workerId: init.workerId }, config.log.format as LogFormat);
  installWorkerPatches();
  warnUntestedLibraries(logger);
  const zoneConfig = config.zones[zone];
  if (!zoneConfig) {
    logger.fatal(`unknown zone ${zone}`);
    return 1;
  }
  let dkim;
  try {
    dkim = loadDkimKeys(config.dkim.keys);
  } catch (err) {
    logger.fatal({ event: 'DKIM_KEYS_FAILED', err: (err as Error).message }, (err as Error).message);
    return 1;
  }
  for (const warning of dkim.warnings) logger.warn({ event: 'DKIM_KEY_WARNING' }, warning);
  let extraCa: string[] | undefined;
  try {
    extraCa = loadExtraCa(config.delivery.ca);
  } catch (err) {
    logger.fatal({ event: 'START_FAILED', err: (err as Error).message }, (err as Error).message);
    return 1;
  }
  let plugins: SenderPlugins;
  try {
    plugins = await loadSenderPlugins(config, logger);
  } catch (err) {
    logger.fatal({ event: 'START_FAILED', err: (err as Error).message }, (err as Error).message);
    return 1;
  }

  const channel = new ChannelClient();
  try {
    await channel.connect({ ...init.channel, zone, workerId: init.workerId, secret: init.secret });
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'cannot reach the master on the data channel');
    await plugins.stop();
    return 1;
  }
  const resolver = new DestinationResolver({
    servers: [...config.dns.servers],
    ignoreIPv6: zoneConfig.ignoreIPv6,
    allowLocalAddresses: config.delivery.allowLocalAddresses,
    timeoutMs: config.dns.timeout,
    port: config.delivery.mxPort,
  });
  const discovery = {
    ...(config.delivery.dane ? { dane: new TlsaResolver(new WireResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout })) } : {}),
    ...(config.delivery.mtaSts
      ? { mtaSts: new MtaStsResolver({ servers: config.dns.servers, timeoutMs: config.dns.timeout, allowLocalAddresses: config.delivery.allowLocalAddresses, extraCa, logger }) }
      : {}),
  };
  const ca = trustList(extraCa);
  const sessions = new SessionPool({
    idleMs: config.delivery.sessionIdle,
    maxIdlePerKey: Math.max(1, zoneConfig.connectionsPerDomain),
    maxMessagesPerSession: config.delivery.maxMessagesPerSession,
    minGapMs: throttleGapMs(zoneConfig.throttling),
  });
  const gcNudge = new GcNudge();
  const loop = new WorkerLoop(
    channel,
    {
      config,
      zone: zoneConfig,
      resolver,
      dkimKeys: dkim.keys,
      bounceRules: loadBounceRules(),
      circuit: new Circuit(config.delivery.unreachableHold),
      sessions,
      hooks: plugins.hooks,
      discovery,
      ...(init.localRoute ? { localRoute: localRouter(init.localRoute) } : {}),
      ...(ca ? { ca } : {}),
      logger,
      chunk: async (id, n) => {
        const parts = await channel.chunk(id, n);
        for (const part of parts ?? []) gcNudge.note(part.length);
        return parts;
      },
    },
    zoneConfig.connections,
    logger,
  );
  const channelLost = new Promise<'lost'>((resolve) => (channel.onClose = () => resolve('lost')));
  channel.onCancel = (leaseId) => loop.cancel(leaseId);
  loop.start();
  logger.info({ event: 'WORKER_READY', connections: zoneConfig.connections }, `worker ${init.workerId} ready`);
  const why = await Promise.race([channelLost, stopSignal.then(() => 'stop' as const)]);
  if (why === 'lost') {
    sessions.closeAll();
    logger.warn({ event: 'CHANNEL_LOST' }, 'data channel closed; exiting (deliveries in flight are released by the master)');
    await plugins.stop();
    return 0;
  }
  // a clean stop: finish what is in flight (bounded by the master's kill deadline), then leave
  await loop.stop();
  sessions.closeAll();
  channel.close();
  await plugins.stop();
  return 0;
}
