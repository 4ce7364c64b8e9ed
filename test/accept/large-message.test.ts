/**
 * Memory per message is bounded whatever its size: a 50 MB message streamed into `sluice run`
 * (a child process, so its RSS is its own) is accepted while the child's RSS grows by less than
 * 32 MB, and the stored body has every byte.
 *
 * The baseline is taken after a 16 MB warm-up message. The first large message a fresh process
 * takes grows RSS by a one-time 30-40 MB whatever its size (measured: 8 MB → +31, 16 MB → +36,
 * 50 MB → +38): V8 frees the stream's spent Buffers only once about 32 MB of them have piled up
 * (process.memoryUsage().arrayBuffers peaks there, and drops to ~0 on a forced GC), plus LevelDB's
 * memtables (~6 MB). After that the pages are reused: a 50 MB or 100 MB message adds 3-5 MB. A
 * message buffered whole would still add 50 MB on top of the warm baseline, which is what this
 * test exists to catch. The cold figure is printed too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import path from 'node:path';
import { createLogger } from '../../lib/log/logger.js';
import { QueueStore } from '../../lib/queue/store.js';
import { rssBytes, startSluiceWith, type SluiceChild } from '../helpers/sluice-child.js';
import { SmtpTalk } from '../helpers/smtp-talk.js';

const MESSAGE_BYTES = 50 * 1024 * 1024;
const MAX_RSS_GROWTH_BYTES = 32 * 1024 * 1024;
const SAMPLE_EVERY_MS = 50;
const WARM_UP_BYTES = 16 * 1024 * 1024;

let child: SluiceChild;
before(async () => {
  child = await startSluiceWith({ smtp: { maxSize: '60MB' } });
});
after(() => child?.stop());

/** The body: lines of 76 printable bytes + CRLF (no line starts with a dot), made as it is sent. */
function* bodyChunks(totalBytes: number): Generator<Buffer> {
  const line = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+0123456789\r\n');
  const perChunk = 1024;
  const chunk = Buffer.concat(Array.from({ length: perChunk }, () => line));
  let left = totalBytes;
  while (left >= chunk.length) {
    yield chunk;
    left -= chunk.length;
  }
  const lines = Math.floor(left / line.length);
  if (lines) yield Buffer.concat(Array.from({ length: lines }, () => line));
}

async function submit(port: number, subject: string, totalBytes: number): Promise<{ reply: string; sha256: string; bytes: number }> {
  const c = await SmtpTalk.connect(port);
  try {
    await c.openData();
    c.write(`Subject: ${subject}\r\n\r\n`);
    const hash = createHash('sha256');
    let bytes = 0;
    for (const chunk of bodyChunks(totalBytes)) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!c.socket.write(chunk)) await once(c.socket, 'drain');
    }
    c.write('.\r\n');
    const r = await c.expect(250, 60_000);
    return { reply: r.text, sha256: hash.digest('hex'), bytes };
  } finally {
    c.close();
  }
}

test('a 50 MB message is accepted while the master RSS grows by less than 32 MB', async () => {
  const port = child.port('smtp');
  const mb = (n: number) => (n / 1024 / 1024).toFixed(1);
  // warm up: code paths loaded, LevelDB written, V8's Buffer collection cycle run once
  const cold = rssBytes(child.pid);
  await submit(port, 'warm-up', WARM_UP_BYTES);
  const baseline = rssBytes(child.pid);
  console.log(`# cold start: RSS ${mb(cold)} MB, after a ${mb(WARM_UP_BYTES)} MB warm-up message ${mb(baseline)} MB`);
  let peak = baseline;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssBytes(child.pid));
    } catch {
      // the child is gone; the send fails and says so
    }
  }, SAMPLE_EVERY_MS);
  const started = Date.now();
  let result;
  try {
    result = await submit(port, 'fifty megabytes', MESSAGE_BYTES);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssBytes(child.pid));
  const tookMs = Date.now() - started;
  const growth = peak - baseline;
  console.log(`# 50 MB accepted in ${tookMs} ms; RSS baseline ${mb(baseline)} MB, peak ${mb(peak)} MB, growth ${mb(growth)} MB`);
  assert.ok(growth < MAX_RSS_GROWTH_BYTES, `RSS grew by ${mb(growth)} MB`);

  const id = /queued as ([0-9a-f]+)/.exec(result.reply)?.[1];
  assert.ok(id, result.reply);
  const res = await fetch(`http://127.0.0.1:${child.port('api')}/message/${id}`);
  const body = (await res.json()) as { meta: { bodySize: number; size: number; chunks: number } };
  assert.equal(body.meta.bodySize, result.bytes);
  assert.ok(body.meta.chunks >= result.bytes / (64 * 1024), 'stored in chunks, not one value');

  // every byte is in the queue: stop the child and read the body back from its LevelDB
  assert.equal((await child.stop()).code, 0);
  const store = await QueueStore.open(path.join(child.dir, 'data', 'queue'), { chunkSizeBytes: 64 * 1024, logger: createLogger('silent') });
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of store.readBody(id)) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    assert.equal(bytes, result.bytes);
    assert.equal(hash.digest('hex'), result.sha256);
  } finally {
    await store.close();
  }
});
