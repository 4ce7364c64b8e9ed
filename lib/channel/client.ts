/**
 * The worker's end of the data channel. Requests carry ids; answers resolve them. If the
 * connection drops, every pending request fails and `onClose` fires: the worker then cancels its
 * deliveries and exits (it must never outlive its master).
 */
import net from 'node:net';
import { encodeJson, FrameDecoder, FRAME_BODY, FRAME_JSON } from './frames.js';
import { tickWriter } from './tick-writer.js';
import { isMasterMessage, PROTOCOL_VERSION, type Job, type MasterMessage, type RowResult, type WorkerMessage } from './protocol.js';

export class ChannelClosedError extends Error {
  constructor() {
    super('data channel closed');
  }
}

/** a body chunk as it arrived: views of the TCP reads that carried it */
export type BodyParts = readonly Buffer[];

type Pending = { resolve: (m: MasterMessage | BodyParts) => void; reject: (e: Error) => void };

export class ChannelClient {
  private socket: net.Socket | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextReq = 1;
  private closed = false;
  /** a job whose body frames are still arriving, by the fetch's req */
  private readonly collecting = new Map<number, { job: Job; chunks: BodyParts[] }>();
  /** bodies sent along with their job, by message id, until the job's result is reported */
  private readonly prefetched = new Map<string, { leaseId: string; chunks: BodyParts[] }>();
  onClose: () => void = () => undefined;
  /** the master cancels the attempt of an expired lease */
  onCancel: (leaseId: string) => void = () => undefined;

  async connect(opts: { host: string; port: number; zone: string; workerId: string; secret: string }): Promise<void> {
    const socket = net.connect({ host: opts.host, port: opts.port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.write = tickWriter(socket);
    const decoder = new FrameDecoder();
    const welcomed = new Promise<void>((resolve, reject) => {
      const fail = () => reject(new ChannelClosedError());
      socket.once('close', fail);
      this.onWelcome = () => {
        socket.off('close', fail);
        resolve();
      };
    });
    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch {
        return socket.destroy();
      }
      for (const f of frames) {
        if (f.kind === FRAME_BODY) {
          const c = this.collecting.get(f.req);
          if (!c) {
            this.settle(f.req, f.data);
            continue;
          }
          c.chunks.push(f.data);
          if (c.chunks.length < (c.job.prefetched ?? 0)) continue;
          this.collecting.delete(f.req);
          this.prefetched.set(c.job.id, { leaseId: c.job.leaseId, chunks: c.chunks });
          this.settle(f.req, { type: 'job', req: f.req, job: c.job });
        } else if (f.kind === FRAME_JSON && isMasterMessage(f.message)) {
          const m = f.message;
          if (m.type === 'welcome') this.onWelcome();
          else if (m.type === 'cancel') this.onCancel(String(m.leaseId));
          else if (m.type === 'job' && m.job.prefetched) this.collecting.set(m.req, { job: m.job, chunks: [] });
          else this.settle(m.req, m);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new ChannelClosedError());
      this.pending.clear();
      this.onClose();
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    this.send({ type: 'hello', version: PROTOCOL_VERSION, zone: opts.zone, workerId: opts.workerId, secret: opts.secret });
    await welcomed;
  }

  private onWelcome: () => void = () => undefined;

  close(): void {
    this.socket?.destroy();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Waits for the next job of this worker's zone. */
  async fetch(): Promise<Job> {
    const m = await this.request((req) => ({ type: 'fetch', req }));
    if (isParts(m) || m.type !== 'job') throw new Error('unexpected answer to fetch');
    return m.job;
  }

  /** One body chunk (in the parts it arrived in), or undefined after the last. */
  async chunk(id: string, chunk: number): Promise<BodyParts | undefined> {
    const pre = this.prefetched.get(id)?.chunks;
    if (pre && chunk < pre.length) return pre[chunk];
    const m = await this.request((req) => ({ type: 'body', req, id, chunk }));
    if (isParts(m)) return m;
    if (m.type === 'bodyEnd') return undefined;
    throw new Error(m.type === 'error' ? m.message : 'unexpected answer to body');
  }

  async result(leaseId: string, results: RowResult[], keptSession = false): Promise<void> {
    for (const [id, p] of this.prefetched) if (p.leaseId === leaseId) this.prefetched.delete(id);
    const m = await this.request((req) => ({ type: 'result', req, leaseId, results, ...(keptSession ? { keptSession } : {}) }));
    if (!isParts(m) && m.type === 'error') throw new Error(m.message);
  }

  private request(make: (req: number) => WorkerMessage): Promise<MasterMessage | BodyParts> {
    if (this.closed || !this.socket) return Promise.reject(new ChannelClosedError());
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject });
      this.send(make(req));
    });
  }

  private settle(req: number, value: MasterMessage | BodyParts): void {
    const p = this.pending.get(req);
    if (!p) return;
    this.pending.delete(req);
    p.resolve(value);
  }

  private write: ((buf: Buffer) => void) | undefined;

  private send(m: WorkerMessage): void {
    this.write?.(encodeJson(m));
  }
}

function isParts(m: MasterMessage | BodyParts): m is BodyParts {
  return Array.isArray(m);
}
