/**
 * The inbound receiver as one part of the master: the inbox (store, parser, retention), the SMTP
 * door with its throttles, blocklist and load gate, the POP3 door of private inboxes, the API
 * routes and the metrics. The master talks to it through these few functions: start, stop,
 * routes, localRoute.
 *
 * Start: inbox (store opened, unparsed mail queued for the parser) → blocklist → load gate →
 *        SMTP listener → POP3 listener.
 * Stop:  listeners (SMTP, POP3: its sessions end first) → load gate, blocklist → inbox.
 */
import type { AddressInfo } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { clientKey } from '../config/net.js';
import type { Config } from '../config/schema.js';
import type { HookRunner } from '../plugins/runner.js';
import type { LocalRoute } from '../zones/local-route.js';
import { DiskGuard } from '../queue/disk-space.js';
import { mailsacRoutes } from './api/mailsac-routes.js';
import { InboxAccess } from './api/access.js';
import { liveRoutes } from './api/live-routes.js';
import { privateRoutes } from './api/private-routes.js';
import { searchRoutes } from './api/search-routes.js';
import { webhookRoute } from './api/webhook-route.js';
import { releaseRoute } from './api/release-route.js';
import { ReleasePolicy, type ReleaseSink } from './release.js';
import { inboxRoutes } from './api/routes.js';
import { StreamSlots } from './api/stream-slots.js';
import { wsRoute } from './api/ws-route.js';
import { Blocklist } from './blocklist.js';
import { Inbox } from './inbox.js';
import { LoadGate } from './load-gate.js';
import { InboundMetrics } from './metrics.js';
import { Pop3Server } from './pop3/server.js';
import { Receiver } from './receiver.js';
import { RecipientPolicy } from './recipients.js';
import { Throttle } from './throttle.js';


export class Inbound {
  readonly inbox: Inbox;
  readonly policy: RecipientPolicy;
  private readonly throttle: Throttle;
  private readonly blocklist: Blocklist;
  private readonly gate: LoadGate;
  /** live streams (SSE, WebSocket) per client IP */
  private readonly streams: StreamSlots;
  private receiver: Receiver | undefined;
  private address: AddressInfo | undefined;
  private pop3: Pop3Server | undefined;
  /** where the POP3 door listens, once started (undefined when it is off) */
  pop3Address: AddressInfo | undefined;

  constructor(
    private readonly deps: {
      config: Config;
      hooks: HookRunner;
      registry: Registry;
      logger: Logger;
      /** told of every chunk of mail the receiver reads or writes (the master's GcNudge) */
      onBytes?: (n: number) => void;
      /** where a released message goes: the outbound ingest */
      release?: ReleaseSink;
    },
  ) {
    const { config, logger } = deps;
    const inbound = config.inbound;
    const log = logger.child({ component: 'inbound' });
    // the inbox names its own component: given `log`, its lines would carry "component" twice
    this.inbox = new Inbox({ config: inbound, hostname: config.hostname, dns: { servers: config.dns.servers, timeoutMs: config.dns.timeout }, logger, onBytes: deps.onBytes });
    this.policy = new RecipientPolicy(inbound.domains, inbound.plusAddressing as 'fold' | 'keep');
    this.throttle = new Throttle(inbound.throttle);
    this.blocklist = new Blocklist(inbound.blocklist, log);
    this.streams = new StreamSlots(inbound.api.maxStreamsPerIp);
    this.gate = new LoadGate({
      maxEventLoopDelayMs: inbound.throttle.maxEventLoopDelay,
      maxPendingWrites: inbound.throttle.maxPendingWrites,
      waitMs: inbound.throttle.loadWait,
      pendingWrites: () => this.inbox.pendingWrites,
    });
  }

  /** Opens the inbox store and starts the SMTP listener; resolves with its address. */
  async start(): Promise<AddressInfo> {
    const { config, hooks, registry, logger } = this.deps;
    const inbound = config.inbound;
    await this.inbox.start();
    this.inbox.onStored((envelope, summary) => {
      void hooks.notify('inbound:message', {
        id: envelope.id,
        from: envelope.from,
        inboxes: envelope.inboxes,
        subject: summary?.subject ?? '',
        size: envelope.size,
        receivedAt: envelope.receivedAt,
        client: { ip: envelope.client.ip, helo: envelope.client.helo, tls: envelope.client.tls },
      });
    });
    this.blocklist.start();
    this.gate.start();
    const stats = this.inbox.stats();
    const metrics = new InboundMetrics(registry, inbound.domains, {
      messages: () => stats.messages,
      bytes: () => stats.bytes,
      parseBacklog: () => stats.parseBacklog,
      evicted: () => stats.evicted,
      throttled: () => this.throttle.refused,
      loadRefused: () => this.gate.refused,
      eventLoopLagMs: () => this.gate.lagMs,
    });
    this.receiver = new Receiver({
      config: inbound,
      hostname: config.hostname,
      inbox: this.inbox,
      policy: this.policy,
      throttle: this.throttle,
      blocklist: this.blocklist,
      gate: this.gate,
      disk: new DiskGuard(inbound.path, inbound.minFreeSpace),
      hooks,
      metrics,
      logger: logger.child({ component: 'inbound' }),
    });
    this.address = await this.receiver.start();
    if (inbound.pop3.enabled) {
      const pop3 = inbound.pop3;
      // STLS with the POP3 section's certificate, else the receiver's
      const tls = pop3.key && pop3.cert ? { key: pop3.key, cert: pop3.cert } : inbound.key && inbound.cert ? { key: inbound.key, cert: inbound.cert } : undefined;
      this.pop3 = new Pop3Server({ config: pop3, tls, hostname: config.hostname, inbox: this.inbox, policy: this.policy, maxPerInbox: inbound.maxPerInbox, logger: logger.child({ component: 'pop3' }) });
      this.pop3Address = await this.pop3.start();
    }
    return this.address;
  }

  /** Stops taking mail: the listener closes, sessions in flight finish or get 421. */
  async stopListening(): Promise<void> {
    // live streams and waiters end now: they would hold the API's close for as long as they wait
    this.streams.closeAll();
    await Promise.all([this.receiver?.stop(), this.pop3?.stop()]);
    this.receiver = undefined;
    this.pop3 = undefined;
  }

  /** Stops taking mail, then closes the store (parses running finish first). */
  async stop(): Promise<void> {
    await this.stopListening();
    this.gate.stop();
    this.blocklist.stop();
    await this.inbox.stop();
  }

  /** The inbox API under /api, limited per client IP. */
  routes() {
    const { config } = this.deps;
    const perMinute = config.inbound.api.ratePerMinute;
    return (app: FastifyInstance) => {
      void app.register(async (scope) => {
        // the inbox routes read no request body; HTTP clients that label an empty one as a form
        // (axios does, for a PUT without data: Mailsac's client) must not get 415 for it
        scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 1024 }, (_req, _body, done) => done(null, undefined));
        if (perMinute > 0) {
          await scope.register(rateLimit, { max: perMinute, timeWindow: 60_000, keyGenerator: (req) => clientKey(req.ip) });
        }
        const access = new InboxAccess(this.policy, this.inbox.privates);
        inboxRoutes({ inbox: this.inbox, access, maxPageSize: Math.min(200, config.inbound.maxPerInbox) })(scope);
        privateRoutes({ inbox: this.inbox, access })(scope);
        searchRoutes({ inbox: this.inbox, policy: this.policy, access })(scope);
        webhookRoute(this.inbox)(scope);
        releaseRoute({ inbox: this.inbox, access, policy: new ReleasePolicy(config.inbound.release.allow, config.inbound.release.from), sink: this.deps.release })(scope);
        liveRoutes({ inbox: this.inbox, access, slots: this.streams })(scope);
        await scope.register(wsRoute({ inbox: this.inbox, policy: this.policy, access, slots: this.streams }));
        mailsacRoutes({ inbox: this.inbox, access, hostname: config.hostname, maxPerInbox: config.inbound.maxPerInbox })(scope);
      });
    };
  }

  /** Where outbound mail for the inbound domains goes (once started), unless routeLocal is off. */
  localRoute(): LocalRoute | undefined {
    const inbound = this.deps.config.inbound;
    if (!inbound.routeLocal || !this.address) return undefined;
    // a wildcard bind is reached over loopback
    const host = this.address.address === '0.0.0.0' ? '127.0.0.1' : this.address.address === '::' ? '::1' : this.address.address;
    return { domains: inbound.domains, host, port: this.address.port, tls: inbound.key ? 'may' : 'none' };
  }
}
