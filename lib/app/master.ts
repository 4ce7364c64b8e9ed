/**
 * The master process's composition root: wire the parts, start them in pipeline order, stop them
 * in reverse. The master owns the queue database; nothing else opens it.
 *
 * Start: queue → hooks → ingest → HTTP API → SMTP listeners → garbage collector.
 * Stop:  listeners (no new mail) → API → collector → queue.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Ingest } from '../accept/ingest.js';
import { SmtpFeeder } from '../accept/smtp-feeder.js';
import { healthRoutes } from '../api/health-routes.js';
import { queueRoutes } from '../api/queue-routes.js';
import { sendRoute } from '../api/send-route.js';
import { createApi, listenApi } from '../api/server.js';
import { listeners, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { logEvent } from '../log/logger.js';
import { HookRunner } from '../plugins/runner.js';
import { DiskGuard } from '../queue/disk-space.js';
import { QueueStore } from '../queue/store.js';
import { ZoneSelector } from '../zones/select.js';

export interface ListenerAddress {
  name: string;
  kind: 'smtp' | 'api';
  address: string;
  port: number;
}

export class Master {
  readonly config: Config;
  readonly hooks: HookRunner;
  store!: QueueStore;
  private feeders: SmtpFeeder[] = [];
  private api: FastifyInstance | undefined;
  private gcTimer: NodeJS.Timeout | undefined;
  readonly listening: ListenerAddress[] = [];

  constructor(
    readonly loaded: LoadedConfig,
    readonly logger: Logger,
  ) {
    this.config = loaded.config;
    this.hooks = new HookRunner(logger.child({ component: 'hooks' }), this.config.hooks.timeout);
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    this.store = await QueueStore.open(config.queue.path, { chunkSizeBytes: config.queue.chunkSize, logger });
    const disk = new DiskGuard(config.queue.path, config.queue.minFreeSpace);
    const zones = new ZoneSelector(config);
    const ingest = new Ingest({ config, store: this.store, hooks: this.hooks, zones, disk, logger });

    try {
      if (config.api.enabled) {
        this.api = createApi(config, logger, [
          sendRoute({ config, ingest, hooks: this.hooks }),
          queueRoutes({ store: this.store, zones, logger }),
          healthRoutes({ store: this.store, disk }),
        ]);
        this.announce('api', 'api', await listenApi(this.api, config));
      }
      for (const [name, listener] of listeners(config)) {
        const feeder = new SmtpFeeder({ config, name, listener, ingest, hooks: this.hooks, disk, logger });
        this.feeders.push(feeder);
        this.announce(name, 'smtp', await feeder.start());
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.gcTimer = setInterval(() => void this.collectGarbage(), config.queue.gcInterval);
    this.gcTimer.unref();
    void this.collectGarbage();
  }

  private announce(name: string, kind: 'smtp' | 'api', addr: AddressInfo): void {
    this.listening.push({ name, kind, address: addr.address, port: addr.port });
    this.logger.info({ event: 'LISTENING', listener: name, kind, address: addr.address, port: addr.port }, `${name} listening on ${addr.address}:${addr.port}`);
  }

  private async collectGarbage(): Promise<void> {
    try {
      const n = await this.store.collectGarbage(Date.now(), this.config.queue.gcGrace);
      if (n) logEvent(this.logger, 'GC', { messages: n }, `collected ${n} leftover bodies`);
    } catch (err) {
      this.logger.warn({ err }, 'garbage collection failed');
    }
  }

  /** Stops in reverse order; safe to call more than once. */
  async stop(): Promise<void> {
    clearInterval(this.gcTimer);
    await Promise.allSettled(this.feeders.map((f) => f.stop()));
    this.feeders = [];
    if (this.api) {
      await this.api.close().catch(() => undefined);
      this.api = undefined;
    }
    if (this.store?.isOpen) await this.store.close();
  }
}
