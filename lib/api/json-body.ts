/**
 * The API's JSON body parser. A small body is gathered and parsed where it arrives; once a body
 * passes INLINE_MAX_BYTES (256 KB) its bytes stream on to a worker thread (json-worker.ts), which gathers
 * and parses it off the event loop (a JSON.parse of 30 MB holds a loop for well over 100 ms, and
 * so does gathering it into one buffer), together with its route's recipient cap (route config
 * `recipientCap`), so that a hostile body is refused there and never comes back. The body limit
 * is the route's (api.maxBodySize): 413 as soon as it is passed. The worker starts on first use
 * and is replaced if it dies; the bodies it held get a 503.
 */
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HttpError } from './errors.js';
import { parseJsonBody } from './json-parse.js';
import type { JsonAnswer, JsonJobMessage } from './json-worker.js';

/** bodies up to this size are parsed on the event loop (a few ms of it, addresses counted too) */
const INLINE_MAX_BYTES = 256 * 1024;
const WORKER_ENTRY = new URL('./json-worker.js', import.meta.url);

/** A route's config: refuse a large body in the worker when it names more recipients than this. */
export interface JsonRouteConfig {
  recipientCap?: number;
}

class WorkerGone extends Error {}

interface WorkerJob {
  push(chunk: Buffer): void;
  finish(): Promise<unknown>;
  abort(): void;
}

class JsonWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  open(maxRecipients: number | undefined): WorkerJob {
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const send = (m: JsonJobMessage) => {
      if (this.worker === worker) worker.postMessage(m);
    };
    send({ type: 'open', id, ...(maxRecipients === undefined ? {} : { maxRecipients }) });
    return {
      // copied into the message: a socket read may share its memory with others
      push: (chunk) => send({ type: 'chunk', id, bytes: chunk }),
      finish: () =>
        new Promise((resolve, reject) => {
          if (this.worker !== worker) return reject(new WorkerGone('the request body parser stopped'));
          this.waiting.set(id, { resolve, reject });
          send({ type: 'end', id });
        }),
      abort: () => send({ type: 'abort', id }),
    };
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private start(): Worker {
    const worker = new Worker(WORKER_ENTRY);
    worker.unref();
    worker.on('message', (answer: JsonAnswer) => {
      const waiter = this.waiting.get(answer.id);
      this.waiting.delete(answer.id);
      if (!waiter) return;
      if ('error' in answer) waiter.reject(new Error(answer.error));
      else waiter.resolve(answer.value);
    });
    const gone = () => {
      if (this.worker === worker) this.worker = undefined;
      for (const w of this.waiting.values()) w.reject(new WorkerGone('the request body parser stopped'));
      this.waiting.clear();
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    this.worker = worker;
    return worker;
  }
}

const tooLarge = () => new HttpError(413, 'PayloadTooLarge', 'Request body is too large (api.maxBodySize)');

/** Reads the body; parses it here or in the worker. Errors are HttpErrors. */
function readJson(req: FastifyRequest, payload: Readable, worker: JsonWorker): Promise<unknown> {
  const limit = req.routeOptions.bodyLimit ?? Infinity;
  const declared = Number(req.headers['content-length']);
  if (declared > limit) return Promise.reject(tooLarge());
  const cap = (req.routeOptions.config as JsonRouteConfig | undefined)?.recipientCap;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let job: WorkerJob | undefined;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onEnd);
    };
    const onData = (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) {
        stop();
        job?.abort();
        return reject(tooLarge());
      }
      if (job) return job.push(chunk);
      chunks.push(chunk);
      if (bytes > INLINE_MAX_BYTES) {
        job = worker.open(cap);
        for (const c of chunks.splice(0)) job.push(c);
      }
    };
    const onEnd = (err?: Error) => {
      stop();
      if (err || (!Number.isNaN(declared) && bytes !== declared)) {
        job?.abort();
        return reject(HttpError.badRequest(err ? `the body could not be read: ${err.message}` : 'the body is shorter than its Content-Length'));
      }
      if (!job) {
        try {
          return resolve(parseJsonBody(Buffer.concat(chunks, bytes)));
        } catch (e) {
          return reject(HttpError.badRequest((e as Error).message));
        }
      }
      job.finish().then(resolve, (e: Error) =>
        reject(e instanceof WorkerGone ? new HttpError(503, 'TemporaryFailure', `${e.message}; try again`) : HttpError.badRequest(e.message)),
      );
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onEnd);
    payload.resume();
  });
}

export function installJsonBodyParser(app: FastifyInstance): void {
  const worker = new JsonWorker();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', (req: FastifyRequest, payload: Readable) => readJson(req, payload, worker));
  app.addHook('onClose', () => worker.close());
}
