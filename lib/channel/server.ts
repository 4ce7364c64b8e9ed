/**
 * The master's end of the data channel: a TCP server on loopback. A connection must say `hello`
 * with the secret its worker was given at fork within a few seconds, or it is closed. After that
 * it may fetch jobs, pull bodies chunk by chunk and report results; the master may tell it to
 * cancel the attempt of a lease that expired, and cut a worker off that does not answer. When
 * the connection closes, every lease it held is released at once (its deliveries are due again).
 *
 * Before hello a connection is a stranger: its frames may be a few KB at most (a hello is a few
 * hundred bytes), and only a few such connections are kept; a new one pushes out the oldest, so
 * a local process opening connections in a loop costs little memory and cannot keep a worker
 * that connects now from being heard.
 */
import net from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { encodeBody, encodeJson, FrameDecoder, FrameError, FRAME_JSON, MAX_FRAME_BYTES } from './frames.js';
import { tickWriter } from './tick-writer.js';
import { isWorkerMessage, PROTOCOL_VERSION, type Job, type MasterMessage, type RowResult, type WorkerMessage } from './protocol.js';

const HELLO_TIMEOUT_MS = 5000;
/** the largest frame a connection may send before its hello is accepted */
const HELLO_MAX_FRAME_BYTES = 4096;
/** connections waiting for their hello, at most; workers say hello as soon as they connect */
const MAX_PENDING = 8;
const EVICTION_LOG_EVERY_MS = 60_000;

export interface ChannelPeer {
  /** unique per connection */
  owner: string;
  workerId: string;
  zone: string;
}

export interface ChannelHandlers {
  /** the secret and zone a worker id was forked with, or undefined for an unknown id */
  credentials(workerId: string): { secret: string; zone: string } | undefined;
  fetch(peer: ChannelPeer): Promise<Job>;
  readChunk(id: string, chunk: number): Promise<Buffer | undefined>;
  /** the whole body of a job, if it is at hand in memory: sent along with the job */
  prefetch?(job: Job): readonly Buffer[] | undefined;
  result(peer: ChannelPeer, leaseId: string, results: RowResult[], keptSession: boolean): Promise<void>;
  closed(peer: ChannelPeer): void;
}

export class ChannelServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** connections that have not said hello yet, oldest first */
  private readonly strangers = new Set<net.Socket>();
  private evicted = 0;
  private lastEvictionLog = 0;
  /** connections that said hello, by owner: the master may write to them unasked */
  private readonly peers = new Map<string, { workerId: string; socket: net.Socket; send: (m: MasterMessage) => void }>();
  private nextOwner = 1;

  constructor(
    private readonly handlers: ChannelHandlers,
    private readonly logger: Logger,
  ) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** Cuts every worker connection (tests use this to simulate a dropped channel). */
  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Makes room for one more connection without hello: the oldest waiting one goes. */
  private admitStranger(socket: net.Socket): void {
    while (this.strangers.size >= MAX_PENDING) {
      const oldest = this.strangers.values().next().value!;
      this.strangers.delete(oldest);
      oldest.destroy();
      this.evicted++;
    }
    this.strangers.add(socket);
    const now = Date.now();
    if (this.evicted && now - this.lastEvictionLog >= EVICTION_LOG_EVERY_MS) {
      this.logger.warn({ event: 'CHANNEL_REFUSED', closed: this.evicted }, `data channel: ${this.evicted} connections closed before their hello (more than ${MAX_PENDING} waiting)`);
      this.lastEvictionLog = now;
      this.evicted = 0;
    }
  }

  /** The workers connected now (hello done), by worker id: a forked worker is not one until then. */
  connected(): string[] {
    return [...this.peers.values()].map((p) => p.workerId);
  }

  /** Tells the worker on connection `owner` to stop the attempt of lease `leaseId`. */
  cancel(owner: string, leaseId: string): void {
    this.peers.get(owner)?.send({ type: 'cancel', leaseId });
  }

  /** Cuts one worker's connection: its leases are released and the worker exits. */
  drop(owner: string): void {
    this.peers.get(owner)?.socket.destroy();
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    this.admitStranger(socket);
    socket.setNoDelay(true);
    const decoder = new FrameDecoder();
    decoder.maxFrameBytes = HELLO_MAX_FRAME_BYTES;
    let peer: ChannelPeer | undefined;
    const write = tickWriter(socket);
    const send = (m: MasterMessage) => write(encodeJson(m));
    const helloTimer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
    helloTimer.unref();

    const onMessage = (m: WorkerMessage) => {
      if (!peer) {
        if (m.type !== 'hello') return socket.destroy();
        const creds = this.handlers.credentials(String(m.workerId));
        if (!creds || m.version !== PROTOCOL_VERSION || !sameSecret(creds.secret, String(m.secret)) || creds.zone !== m.zone) {
          this.logger.warn({ event: 'CHANNEL_REFUSED', workerId: String(m.workerId).slice(0, 64) }, 'data channel: bad hello, closing');
          return socket.destroy();
        }
        clearTimeout(helloTimer);
        this.strangers.delete(socket);
        decoder.maxFrameBytes = MAX_FRAME_BYTES;
        peer = { owner: `c${this.nextOwner++}`, workerId: m.workerId, zone: m.zone };
        this.peers.set(peer.owner, { workerId: peer.workerId, socket, send });
        send({ type: 'welcome', version: PROTOCOL_VERSION, workerId: m.workerId });
        return;
      }
      const p = peer;
      switch (m.type) {
        case 'hello':
          return socket.destroy();
        case 'fetch':
          this.handlers.fetch(p).then(
            (job) => {
              if (socket.destroyed) {
                this.handlers.closed(p); // lease went to a dead socket: give it back
                return;
              }
              const body = this.handlers.prefetch?.(job);
              if (!body?.length) return send({ type: 'job', req: m.req, job });
              send({ type: 'job', req: m.req, job: { ...job, prefetched: body.length } });
              for (const chunk of body) for (const part of encodeBody(m.req, chunk)) write(part);
            },
            () => undefined, // the worker went away or we are closing
          );
          return;
        case 'body':
          this.handlers.readChunk(m.id, m.chunk).then(
            (data) => {
              if (socket.destroyed) return;
              if (data) for (const part of encodeBody(m.req, data)) write(part);
              else send({ type: 'bodyEnd', req: m.req });
            },
            (err: Error) => send({ type: 'error', req: m.req, message: err.message }),
          );
          return;
        case 'result':
          this.handlers.result(p, m.leaseId, m.results, m.keptSession === true).then(
            () => send({ type: 'ack', req: m.req }),
            (err: Error) => {
              this.logger.error({ err, leaseId: m.leaseId }, 'recording a delivery result failed');
              send({ type: 'error', req: m.req, message: 'result not recorded' });
            },
          );
          return;
      }
    };

    socket.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = decoder.push(chunk);
      } catch (err) {
        this.logger.warn({ err: (err as FrameError).message }, 'data channel: protocol error, closing');
        return socket.destroy();
      }
      for (const f of frames) {
        if (f.kind !== FRAME_JSON || !isWorkerMessage(f.message)) return socket.destroy();
        onMessage(f.message);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.sockets.delete(socket);
      this.strangers.delete(socket);
      if (peer) {
        this.peers.delete(peer.owner);
        this.handlers.closed(peer);
      }
    });
  }
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
