/**
 * Keeps each zone's delivery workers running: forks `processes` children per zone, gives each a
 * fresh secret for the data channel and the config it needs (worker-config.ts) over IPC (never in
 * argv or the environment), restarts one that dies (at once, unless its slot is crash-looping:
 * then with growing back-off, logged), and stops them cleanly: ask, wait, then kill.
 *
 * A reload replaces every worker slot by slot: the new worker is forked with the new config
 * first, then the old one is asked to stop, finishes the deliveries it holds and exits (killed
 * after STOP_GRACE_MS, when the master releases its leases: the mail is due again, never lost).
 * A slot's worker that exits on its own is replaced; a retired one is not.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { LocalRoute } from '../zones/local-route.js';
import type { WorkerInit } from './worker.js';
import { withNodeFlags, withProcessEnv } from './node-flags.js';
import { workerConfig } from './worker-config.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));
const MAX_BACKOFF_MS = 30_000;
/**
 * A slot that started this many workers within RESTART_WINDOW_MS is crash-looping: its next
 * restarts back off (a reload's replacements do not count). Below that a dead worker is replaced
 * at once, whatever killed it: its deliveries are due again and need hands, within 2 s even after
 * several kills in a row (fault F2). Backing off for every worker that dies young would delay
 * exactly those replacements.
 */
const LOOP_STARTS = 5;
const RESTART_WINDOW_MS = 60_000;
const STOP_GRACE_MS = 10_000;

interface Slot {
  zone: string;
  index: number;
  generation: number;
  child?: ChildProcess;
  workerId?: string;
  startedAt: number;
  /** start times within RESTART_WINDOW_MS, oldest first */
  recentStarts: number[];
  timer?: NodeJS.Timeout;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly credentialsById = new Map<string, { secret: string; zone: string }>();
  private stopping = false;
  /** what each worker is given: no secrets it does not need */
  private forWorkers: Config;
  /** workers replaced by a reload, finishing what they hold */
  private readonly retiring = new Set<ChildProcess>();

  constructor(
    private readonly config: Config,
    private readonly channel: { host: string; port: number },
    private readonly logger: Logger,
    /** handed to every worker: where mail for the local inbound domains goes */
    private readonly localRoute?: LocalRoute,
    /** told of each worker that exited and is started again (metrics) */
    private readonly onRestart?: (zone: string) => void,
    /** told of each worker a reload replaces, before it is asked to stop: it gets no new work */
    private readonly onRetire?: (workerId: string) => void,
  ) {
    this.forWorkers = workerConfig(config);
  }

  start(): void {
    for (const [zone, z] of Object.entries(this.config.zones)) {
      for (let i = 0; i < z.processes; i++) {
        const slot: Slot = { zone, index: i, generation: 0, startedAt: 0, recentStarts: [] };
        this.slots.push(slot);
        this.spawn(slot);
      }
    }
  }

  credentials(workerId: string): { secret: string; zone: string } | undefined {
    return this.credentialsById.get(workerId);
  }

  /** PIDs of the live workers, per zone (for status and tests). */
  pids(): { zone: string; workerId: string; pid: number }[] {
    return this.slots.filter((s) => s.child?.pid && s.workerId).map((s) => ({ zone: s.zone, workerId: s.workerId!, pid: s.child!.pid! }));
  }

  /**
   * Starts every slot's worker again with `config` (same zones and worker counts: the reload
   * plan makes those restart-only). Resolves once every replaced worker has exited.
   */
  async reload(config: Config): Promise<void> {
    this.forWorkers = workerConfig(config);
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      if (this.stopping) break;
      const old = slot.child;
      const oldId = slot.workerId;
      // a slot waiting out its back-off starts at once, with the new config
      clearTimeout(slot.timer);
      this.spawn(slot, 'reload');
      if (old) {
        if (oldId) this.onRetire?.(oldId);
        this.retiring.add(old);
        exits.push(this.retire(old));
      }
    }
    await Promise.all(exits);
  }

  /** Asks a worker to finish and leave; kills it after the grace time. */
  private retire(child: ChildProcess): Promise<void> {
    return new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      if (child.connected) child.send({ type: 'stop' });
      else child.kill('SIGTERM');
    });
  }

  private spawn(slot: Slot, why: 'start' | 'reload' = 'start'): void {
    slot.generation++;
    const workerId = `${slot.zone}.${slot.index}.${slot.generation}`;
    const secret = randomBytes(32).toString('hex');
    this.credentialsById.set(workerId, { secret, zone: slot.zone });
    const child = fork(WORKER_ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json', execArgv: withNodeFlags(process.execArgv), env: withProcessEnv(process.env) });
    slot.child = child;
    slot.workerId = workerId;
    slot.startedAt = Date.now();
    if (why === 'start') slot.recentStarts.push(slot.startedAt);
    const init: WorkerInit = { type: 'init', config: this.forWorkers, zone: slot.zone, workerId, secret, channel: this.channel, ...(this.localRoute ? { localRoute: this.localRoute } : {}) };
    child.send(init);
    this.logger.info({ event: 'WORKER_STARTED', zone: slot.zone, workerId, workerPid: child.pid }, `worker ${workerId} started (pid ${child.pid})`);
    child.on('error', (err) => this.logger.error({ err, workerId }, 'worker process error'));
    child.once('exit', (code, signal) => {
      this.credentialsById.delete(workerId);
      if (this.retiring.delete(child)) {
        this.logger.info({ event: 'WORKER_RETIRED', zone: slot.zone, workerId, code, signal }, `worker ${workerId} replaced by a reload has exited (${signal ?? code})`);
        return;
      }
      if (slot.child === child) slot.child = undefined;
      if (this.stopping) return;
      const now = Date.now();
      while (slot.recentStarts.length && slot.recentStarts[0]! <= now - RESTART_WINDOW_MS) slot.recentStarts.shift();
      const starts = slot.recentStarts.length;
      const delay = starts < LOOP_STARTS ? 0 : Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (starts - LOOP_STARTS));
      this.logger.warn({ event: 'WORKER_EXITED', zone: slot.zone, workerId, code, signal, restartInMs: delay }, `worker ${workerId} exited (${signal ?? code}); restarting in ${delay} ms`);
      this.onRestart?.(slot.zone);
      slot.timer = setTimeout(() => this.spawn(slot), delay);
    });
  }

  /** Asks every worker to finish and leave; kills the ones still there after the grace time. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [...this.retiring].map((child) => this.retire(child));
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      if (slot.child) exits.push(this.retire(slot.child));
    }
    await Promise.all(exits);
  }
}
