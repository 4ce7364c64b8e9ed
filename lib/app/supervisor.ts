/**
 * Keeps each zone's delivery workers running: forks `processes` children per zone, gives each a
 * fresh secret for the data channel over IPC (never in argv or the environment), restarts one
 * that dies (with growing back-off when it keeps dying young, logged), and stops them cleanly:
 * ask, wait, then kill.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { WorkerInit } from './worker.js';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.js', import.meta.url));
const MAX_BACKOFF_MS = 30_000;
/** a worker that lived this long was healthy: its next restart is immediate */
const HEALTHY_AFTER_MS = 30_000;
const STOP_GRACE_MS = 10_000;

interface Slot {
  zone: string;
  index: number;
  generation: number;
  child?: ChildProcess;
  workerId?: string;
  startedAt: number;
  failures: number;
  timer?: NodeJS.Timeout;
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private readonly credentialsById = new Map<string, { secret: string; zone: string }>();
  private stopping = false;

  constructor(
    private readonly config: Config,
    private readonly channel: { host: string; port: number },
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (const [zone, z] of Object.entries(this.config.zones)) {
      for (let i = 0; i < z.processes; i++) {
        const slot: Slot = { zone, index: i, generation: 0, startedAt: 0, failures: 0 };
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

  private spawn(slot: Slot): void {
    slot.generation++;
    const workerId = `${slot.zone}.${slot.index}.${slot.generation}`;
    const secret = randomBytes(32).toString('hex');
    this.credentialsById.set(workerId, { secret, zone: slot.zone });
    const child = fork(WORKER_ENTRY, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'json' });
    slot.child = child;
    slot.workerId = workerId;
    slot.startedAt = Date.now();
    const init: WorkerInit = { type: 'init', config: this.config, zone: slot.zone, workerId, secret, channel: this.channel };
    child.send(init);
    this.logger.info({ event: 'WORKER_STARTED', zone: slot.zone, workerId, pid: child.pid }, `worker ${workerId} started (pid ${child.pid})`);
    child.on('error', (err) => this.logger.error({ err, workerId }, 'worker process error'));
    child.once('exit', (code, signal) => {
      this.credentialsById.delete(workerId);
      if (slot.child === child) slot.child = undefined;
      if (this.stopping) return;
      const lived = Date.now() - slot.startedAt;
      slot.failures = lived >= HEALTHY_AFTER_MS ? 0 : slot.failures + 1;
      const delay = slot.failures <= 1 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** (slot.failures - 1));
      this.logger.warn({ event: 'WORKER_EXITED', zone: slot.zone, workerId, code, signal, restartInMs: delay }, `worker ${workerId} exited (${signal ?? code}); restarting in ${delay} ms`);
      slot.timer = setTimeout(() => this.spawn(slot), delay);
    });
  }

  /** Asks every worker to finish and leave; kills the ones still there after the grace time. */
  async stop(): Promise<void> {
    this.stopping = true;
    const exits: Promise<void>[] = [];
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      const child = slot.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      exits.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          if (child.connected) child.send({ type: 'stop' });
          else child.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(exits);
  }
}
