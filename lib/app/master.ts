/**
 * The master process's composition root: wire the parts, start them in pipeline order, stop them
 * in reverse. The master owns the queue database; nothing else opens it.
 *
 * Start: plugins (main) → queue → inbound receiver (inbox store, its SMTP and POP3 listeners)
 *        → scheduler → data channel → workers (told where the inbound receiver listens) → ingest
 *        → HTTP API (with the inbox routes and the plugins' routes) → SMTP listeners → garbage
 *        collector.
 * Stop:  listeners (no new mail, inbound included) → API → inbox store → workers (finish
 *        in-flight) → data channel → scheduler → collector → plugins → queue.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { Ingest } from '../accept/ingest.js';
import { AuthFailures } from '../accept/auth-failures.js';
import { PasswordChecker } from '../accept/password-checker.js';
import { SmtpFeeder } from '../accept/smtp-feeder.js';
import { healthRoutes } from '../api/health-routes.js';
import { queueRoutes } from '../api/queue-routes.js';
import { sendRawRoute } from '../api/send-raw-route.js';
import { zonemtaRoutes } from '../api/zonemta-routes.js';
import { sendRoute } from '../api/send-route.js';
import { retryRoute } from '../api/retry-route.js';
import { adminRoutes } from '../api/admin-routes.js';
import { suppressionRoutes } from '../api/suppression-routes.js';
import { zonemtaQueueRoutes } from '../api/zonemta-queue-routes.js';
import { QueueAdmin } from '../queue/admin.js';
import { SuppressionList } from '../queue/suppression.js';
import { releaseDeleted } from '../plugins/outcome-hooks.js';
import { pluginRoutes } from '../api/plugin-routes.js';
import { createApi, listenApi } from '../api/server.js';
import { listeners, type LoadedConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import type { ReloadPlan } from '../config/reload-plan.js';
import { logEvent } from '../log/logger.js';
import { warnUntestedLibraries } from '../pinned/internals.js';
import { installMasterPatches } from '../pinned/install.js';
import { HookRunner } from '../plugins/runner.js';
import { loadPlugins, type LoadedPlugins } from '../plugins/loader.js';
import { OutcomeHooks } from '../plugins/outcome-hooks.js';
import { DiskGuard } from '../queue/disk-space.js';
import { QueueStore } from '../queue/store.js';
import { Scheduler, type Lease } from '../queue/scheduler.js';
import { Outcomes, type OutcomeListener } from '../queue/outcomes.js';
import { EventWebhook } from '../bounce/webhook.js';
import { ChannelServer } from '../channel/server.js';
import { BounceNotifier } from '../bounce/notify.js';
import { ZoneSelector } from '../zones/select.js';
import { Supervisor } from './supervisor.js';
import { Dispatch } from '../queue/dispatch.js';
import { loadDkimKeys } from '../deliver/dkim/keys.js';
import { loadExtraCa } from '../deliver/tls/trust.js';
import { FreshBodies } from '../queue/fresh-bodies.js';
import { GcNudge } from './gc-nudge.js';
import type { Inbound } from '../inbound/inbound.js';
import { createMetricsRegistry, metricsRoute } from '../api/metrics.js';
import type { MtaMetrics } from '../api/mta-metrics.js';
import type { Readiness } from '../api/readiness.js';
import { observe } from './observe.js';

/**
 * Bodies of just-accepted messages kept in memory for their first attempt (see FreshBodies): at
 * most this much in all, and only messages up to the second figure. 20 sessions of 100 KB
 * messages in flight need about 2 MB; the rest is for mail waiting for a free worker.
 */
const FRESH_BODY_BYTES = 4 * 1024 * 1024;
const FRESH_BODY_MESSAGE_BYTES = 256 * 1024;

export interface ListenerAddress {
  name: string;
  kind: 'smtp' | 'api' | 'channel' | 'inbound' | 'pop3';
  address: string;
  port: number;
}

export class Master {
  /** the running config; a reload replaces it with one differing only in live keys (reload-plan.ts) */
  config: Config;
  readonly hooks: HookRunner;
  store!: QueueStore;
  private feeders: SmtpFeeder[] = [];
  private api: FastifyInstance | undefined;
  private gcTimer: NodeJS.Timeout | undefined;
  scheduler: Scheduler | undefined;
  private outcomes: Outcomes | undefined;
  channel: ChannelServer | undefined;
  supervisor: Supervisor | undefined;
  private webhook: EventWebhook | undefined;
  plugins: LoadedPlugins | undefined;
  inbound: Inbound | undefined;
  readonly metrics = createMetricsRegistry();
  private mtaMetrics: MtaMetrics | undefined;
  readiness: Readiness | undefined;
  /** every listener is up (start() finished) and no stop has begun */
  private serving = false;
  /** the step a stop is at, for the lines that say what it still waits for */
  private stopStep: string | undefined;
  /** counts the mail streaming through this process (both doors) to bring V8's collections forward */
  private readonly gcNudge = new GcNudge();
  private passwords: PasswordChecker | undefined;
  readonly listening: ListenerAddress[] = [];
  /** every route of the HTTP API, as registered (the OpenAPI test compares the document with it) */
  readonly apiRoutes: { method: string; url: string; hidden: boolean }[] = [];

  constructor(
    readonly loaded: LoadedConfig,
    readonly logger: Logger,
  ) {
    this.config = loaded.config;
    this.hooks = new HookRunner(logger.child({ component: 'hooks' }), this.config.hooks.timeout);
  }

  async start(): Promise<void> {
    const { config, logger } = this;
    installMasterPatches();
    warnUntestedLibraries(logger);
    // a DKIM key the workers cannot load would make them crash-loop: check every key once here,
    // naming the bad one, and keep none of them (only the workers hold keys)
    loadDkimKeys(config.dkim.keys);
    loadExtraCa(config.delivery.ca); // the same for the extra CA file
    // first: a plugin that cannot load stops the start before anything is opened
    const plugins = (this.plugins = await loadPlugins({ config, process: 'main', hooks: this.hooks, logger }));
    const openedAt = performance.now();
    try {
      // the rows are counted in the background: a queue of a million rows takes seconds to read,
      // and nothing else needs them all (the scheduler reads its index by due time)
      this.store = await QueueStore.open(config.queue.path, { chunkSizeBytes: config.queue.chunkSize, logger, countInBackground: true });
    } catch (err) {
      await this.stop();
      throw err;
    }
    const openMs = Math.round(performance.now() - openedAt);
    logger.info({ event: 'QUEUE_OPENED', ms: openMs }, `queue opened in ${openMs} ms; counting its rows in the background`);
    this.reportCount(this.store);
    const disk = new DiskGuard(config.queue.path, config.queue.minFreeSpace);
    const zones = new ZoneSelector(config);
    // an expired lease's attempt is cancelled through the data channel (started later)
    const enforcer = { expired: (lease: Lease) => this.channel?.cancel(lease.owner, lease.leaseId), abandoned: (owner: string) => this.channel?.drop(owner) };
    const scheduler = (this.scheduler = new Scheduler(this.store, config, logger.child({ component: 'scheduler' }), Date.now, enforcer));
    const { metrics, readiness } = observe({
      config,
      registry: this.metrics,
      store: this.store,
      scheduler,
      disk,
      serving: () => this.serving,
      connectedWorkers: () => this.channel?.connected() ?? [],
      zoneOf: (workerId) => this.supervisor?.credentials(workerId)?.zone,
    });
    this.mtaMetrics = metrics;
    this.readiness = readiness;
    const fresh = new FreshBodies({ maxBytes: FRESH_BODY_BYTES, maxMessageBytes: FRESH_BODY_MESSAGE_BYTES });
    const gcNudge = this.gcNudge;
    this.store.onDelete((id) => {
      scheduler.forget(id);
      fresh.drop(id);
    });
    const ingest = new Ingest({
      config,
      store: this.store,
      hooks: this.hooks,
      zones,
      disk,
      logger,
      retainBodyUpTo: FRESH_BODY_MESSAGE_BYTES,
      // counted as it streams in, so that one large message does not pile up dead Buffers either
      onBytes: (n) => gcNudge.note(n),
      tally: metrics,
      onQueued: (meta, rows, body) => {
        if (body) fresh.add(meta.id, body);
        scheduler.offer(meta, rows);
      },
    });
    // bounces and delay notices are written with the report (NoticeWriter); success notices follow it
    const notifier = new BounceNotifier(config, ingest, logger, this.hooks);
    const notified: OutcomeListener[] = [notifier, metrics];
    const outcomeHooks = new OutcomeHooks(this.hooks);
    if (outcomeHooks.wanted) notified.push(outcomeHooks);
    if (config.events.url) {
      this.webhook = new EventWebhook({ url: config.events.url, secret: config.events.secret, timeoutMs: config.events.timeout, maxAttempts: config.events.maxAttempts, maxPending: config.events.maxPending, onDrop: () => metrics.webhookDropped('events') }, logger.child({ component: 'events' }));
      notified.push(this.webhook);
    }
    const outcomes = (this.outcomes = new Outcomes(this.store, config, logger, notified, { notices: notifier }));
    const suppression = await SuppressionList.load(this.store).catch(async (err: unknown) => {
      await this.stop();
      throw err;
    });
    const admin = new QueueAdmin({ store: this.store, scheduler, logger, rowsRemoved: (id) => outcomes.forgetCount(id), deleted: (rows) => releaseDeleted(this.hooks, rows) });

    try {
      if (config.inbound.enabled) {
        // loaded only when enabled: its parsers, authentication checks and API routes (mailauth,
        // mailparser, sanitize-html, tldts' lists) are about 20 MB of V8 heap a relay-only master
        // would carry for nothing (bench/README.md, "Memory under load")
        const { Inbound } = await import('../inbound/inbound.js');
        // before the workers, which are told where it listens
        this.inbound = new Inbound({
          config,
          hooks: this.hooks,
          registry: this.metrics,
          logger,
          onBytes: (n) => this.gcNudge.note(n),
          // a released inbox message is queued like any other: through ingest
          release: (r) => ingest.ingest({ from: r.from, to: r.to, origin: { via: 'release', transmissionType: 'ESMTP' }, source: r.source, maxSizeBytes: Math.max(config.smtp.maxSize, config.inbound.maxSize) }),
        });
        this.announce('inbound', 'inbound', await this.inbound.start());
        if (this.inbound.pop3Address) this.announce('pop3', 'pop3', this.inbound.pop3Address);
      }
      // a worker says hello only after the supervisor (made once the channel listens) forked it
      const credentials = (workerId: string) => this.supervisor?.credentials(workerId);
      await this.startDelivery(new Dispatch({ store: this.store, scheduler, outcomes, fresh, logger, credentials, attempted: (zone) => readiness.attempted(zone), suppression }));
      if (config.api.enabled) {
        // a plugin serving GET /metrics itself (core/delivery-counters) keeps that path
        const pluginMetrics = plugins.routes.some(({ route }) => route.url === '/metrics' && [route.method].flat().includes('GET'));
        this.api = createApi(config, logger, [
          sendRoute({ config, ingest, hooks: this.hooks }),
          sendRawRoute({ config, ingest, hooks: this.hooks }),
          zonemtaRoutes({ store: this.store, zones }),
          queueRoutes({ store: this.store, zones, logger, hooks: this.hooks }),
          healthRoutes({ store: this.store, disk, readiness: this.readiness }),
          retryRoute({ store: this.store, scheduler }),
          adminRoutes({ store: this.store, admin }),
          suppressionRoutes({ list: suppression, logger }),
          zonemtaQueueRoutes({ store: this.store, admin, zones }),
          ...(this.inbound ? [this.inbound.routes()] : []),
          ...(pluginMetrics ? [] : [metricsRoute(this.metrics)]),
          pluginRoutes(plugins.routes),
        ], (route) => this.apiRoutes.push(route));
        this.announce('api', 'api', await listenApi(this.api, config));
      }
      const passwords = (this.passwords = new PasswordChecker());
      const authFailures = new AuthFailures(config.smtp.maxAuthFailures, config.smtp.authFailureWindow);
      for (const [name, listener] of listeners(config)) {
        const feeder = new SmtpFeeder({ config, name, listener, ingest, hooks: this.hooks, disk, logger, passwords, authFailures });
        this.feeders.push(feeder);
        this.announce(name, 'smtp', await feeder.start());
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.serving = true;
    this.gcTimer = setInterval(() => void this.collectGarbage(), config.queue.gcInterval);
    this.gcTimer.unref();
    void this.collectGarbage();
  }

  /** Logs QUEUE_LOADED when the rows found at open are counted (or why they could not be). */
  private reportCount(store: QueueStore): void {
    const { logger } = this;
    store.counted.then(
      ({ rows, ms }) => {
        const now = store.counters.totals();
        logger.info({ event: 'QUEUE_LOADED', rows, ...now, ms }, `queue loaded: ${rows} rows in ${ms} ms`);
      },
      (err: unknown) => {
        // a stop closes the database under the count: nothing to say then
        if (store.isOpen) logger.error({ event: 'QUEUE_COUNT_FAILED', err }, 'counting the queue rows failed; queue counts stay unavailable until a restart');
      },
    );
  }

  /** The data channel and the workers behind it. */
  private async startDelivery(dispatch: Dispatch): Promise<void> {
    const { config, logger } = this;
    this.channel = new ChannelServer(dispatch, logger.child({ component: 'channel' }));
    const addr = await this.channel.listen(config.channel.host, config.channel.port);
    this.announce('channel', 'channel', addr);
    this.supervisor = new Supervisor(
      config,
      { host: config.channel.host, port: addr.port },
      logger.child({ component: 'workers' }),
      this.inbound?.localRoute(),
      (zone) => this.mtaMetrics?.workerRestarted(zone),
      (workerId) => dispatch.retire(workerId),
    );
    this.supervisor.start();
  }

  /**
   * Runs with a reloaded config from now on. Only `plan.applied` differ from the running config;
   * the parts built at start keep what they were given, which is why those keys need a restart.
   * Resolves once the replaced workers have exited.
   */
  async applyReload(plan: ReloadPlan): Promise<void> {
    this.config = plan.effective;
    if (plan.appliers.has('master')) {
      this.logger.level = plan.effective.log.level;
      this.scheduler?.reconfigure(plan.effective);
    }
    if (plan.appliers.has('workers')) await this.supervisor?.reload(plan.effective);
  }

  /** What a stop still waits for: the step it is at and the work still open. */
  stillOpen(): { step: string | undefined; smtpSessions: number; leases: number; workers: number } {
    return {
      step: this.stopStep,
      smtpSessions: this.feeders.reduce((n, f) => n + f.sessions, 0),
      leases: this.scheduler?.leasedCount ?? 0,
      workers: this.supervisor?.pids().length ?? 0,
    };
  }

  private announce(name: string, kind: ListenerAddress['kind'], addr: AddressInfo): void {
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
    this.serving = false;
    clearInterval(this.gcTimer);
    this.stopStep = 'listeners';
    await Promise.allSettled([...this.feeders.map((f) => f.stop()), this.inbound?.stopListening()]);
    this.feeders = [];
    await this.passwords?.close();
    this.passwords = undefined;
    this.stopStep = 'api';
    if (this.api) {
      await this.api.close().catch(() => undefined);
      this.api = undefined;
    }
    // results the workers report while they finish still get their write, but one that fails
    // is not retried: the stop must not wait for a full disk
    this.outcomes?.close();
    this.stopStep = 'inbox';
    await this.inbound?.stop();
    this.inbound = undefined;
    this.stopStep = 'workers';
    await this.supervisor?.stop();
    this.supervisor = undefined;
    await this.channel?.close();
    this.channel = undefined;
    this.scheduler?.close();
    this.webhook?.stop();
    this.stopStep = 'plugins';
    await this.plugins?.stop();
    this.plugins = undefined;
    this.stopStep = 'queue';
    if (this.store?.isOpen) await this.store.close();
    this.stopStep = 'stopped';
  }
}
