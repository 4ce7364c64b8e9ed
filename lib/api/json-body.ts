/**
 * The API's JSON body parser. A small body is gathered and parsed where it arrives; once a body
 * passes INLINE_MAX_BYTES (256 KB) its bytes stream on to a worker thread (json-worker.ts), which
 * gathers and parses it off the event loop (a JSON.parse of 30 MB holds a loop for well over
 * 100 ms, and so does gathering it into one buffer), together with its route's recipient cap
 * (route config `recipientCap`), so that a hostile body is refused there and never comes back.
 * The body limit is the route's (api.maxBodySize): 413 as soon as it is passed. If the worker
 * dies, the bodies it held get a 503 and the next body starts a new one.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { WorkerThread } from '../accept/worker-thread.js';
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

// fastify's route config is one interface every plugin adds to (@fastify/rate-limit adds rateLimit)
declare module 'fastify' {
  interface FastifyContextConfig extends JsonRouteConfig {}
}

class WorkerGone extends Error {}

interface WorkerJob {
  push(chunk: Buffer): void;
  finish(): Promise<unknown>;
  abort(): void;
}

class JsonWorker {
  private readonly thread = new WorkerThread<JsonAnswer>(WORKER_ENTRY, () => new WorkerGone('the request body parser stopped'));

  open(maxRecipients: number | undefined): WorkerJob {
    const session = this.thread.session();
    const { id } = session;
    const send = (m: JsonJobMessage) => session.post(m);
    send({ type: 'open', id, ...(maxRecipients === undefined ? {} : { maxRecipients }) });
    return {
      // copied into the message: a socket read may share its memory with others
      push: (chunk) => send({ type: 'chunk', id, bytes: chunk }),
      finish: async () => {
        const answer = await session.answer({ type: 'end', id } satisfies JsonJobMessage);
        if ('error' in answer) throw new Error(answer.error);
        return answer.value;
      },
      abort: () => send({ type: 'abort', id }),
    };
  }

  close(): Promise<void> {
    return this.thread.close();
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
