/**
 * The worker thread of the API's body parser (json-body.ts): takes a large JSON body as it
 * streams in, parses it off the master's event loop and, for a route that names a recipient cap,
 * counts its recipients, so that a body refused for them never comes back to the main thread.
 *
 *   in:  { type: 'open', id, maxRecipients? } · { type: 'chunk', id, bytes } · { type: 'end', id }
 *        · { type: 'abort', id }
 *   out: { id, value } | { id, error }          (after 'end')
 */
import { parentPort } from 'node:worker_threads';
import { parseJsonBody } from './json-parse.js';
import { recipientProblem } from './recipient-count.js';

export type JsonJobMessage =
  | { type: 'open'; id: number; maxRecipients?: number }
  | { type: 'chunk'; id: number; bytes: Uint8Array }
  | { type: 'end'; id: number }
  | { type: 'abort'; id: number };
export type JsonAnswer = { id: number; value: unknown } | { id: number; error: string };

const jobs = new Map<number, { chunks: Uint8Array[]; bytes: number; maxRecipients?: number }>();

function finish(id: number): JsonAnswer {
  const job = jobs.get(id);
  jobs.delete(id);
  if (!job) return { id, error: 'the body was lost' };
  try {
    const value = parseJsonBody(Buffer.concat(job.chunks, job.bytes));
    const problem = job.maxRecipients === undefined ? undefined : recipientProblem(value, job.maxRecipients);
    return problem ? { id, error: problem } : { id, value };
  } catch (err) {
    return { id, error: (err as Error).message };
  }
}

parentPort?.on('message', (m: JsonJobMessage) => {
  switch (m.type) {
    case 'open':
      jobs.set(m.id, { chunks: [], bytes: 0, maxRecipients: m.maxRecipients });
      return;
    case 'chunk': {
      const job = jobs.get(m.id);
      if (job) {
        job.chunks.push(m.bytes);
        job.bytes += m.bytes.length;
      }
      return;
    }
    case 'end': {
      const answer = finish(m.id);
      try {
        parentPort!.postMessage(answer);
      } catch (err) {
        // a value the structured clone cannot carry (a nesting bomb runs it out of stack)
        parentPort!.postMessage({ id: m.id, error: `the body is nested too deeply (${(err as Error).message})` });
      }
      return;
    }
    case 'abort':
      jobs.delete(m.id);
      return;
  }
});
