/**
 * Fills a queue directly, not through SMTP, so a benchmark or a test can start Sluice on a queue
 * of a million rows written in seconds: messages with their metadata, body chunks, delivery rows
 * and schedule keys, in large batches through the store's typed operations (QueueBatch), so the
 * records are exactly what ingest and the outcome path write.
 *
 * The shape of the queue is set by the options: rows spread round-robin over `domains` recipient
 * domains (`d<k>.fill.test`) and over `zones`, a share of them deferred (one failed attempt, a 4xx
 * reply, due later), creation times spread over the past (ids follow them, so listings and age
 * buckets see a queue that grew over time), `senders` sender domains.
 *
 * Run by hand: `node dist/bench/queue-fill.js <queue dir> [rows] [domains]` (Sluice stopped).
 */
import { pathToFileURL } from 'node:url';
import { createLogger } from '../lib/log/logger.js';
import { BodyHasher } from '../lib/message/body-hash.js';
import { QueueBatch } from '../lib/queue/batch.js';
import { QueueStore } from '../lib/queue/store.js';
import type { DeliveryRow, MessageMeta } from '../lib/queue/types.js';

export interface QueueFillOptions {
  /** delivery rows in all */
  rows: number;
  /** rows (recipients) per message (default 1) */
  rowsPerMessage?: number;
  /** distinct recipient domains, d0.fill.test … (default 1,000) */
  domains?: number;
  /** zones the messages are spread over, round-robin (default ['default']) */
  zones?: readonly string[];
  /** share of rows deferred, 0..1 (default 1: a queue of deferred mail) */
  deferredShare?: number;
  /** when the first row is due, ms since the epoch (default: an hour from now) */
  dueFrom?: number;
  /** due times spread over this many ms after dueFrom (default 1 h) */
  dueSpreadMs?: number;
  /** creation times spread over this many ms before now (default 2 days) */
  ageSpreadMs?: number;
  /** distinct sender domains, s0.fill.test … (default 10) */
  senders?: number;
  /** body size in bytes (default 1,024) */
  bodyBytes?: number;
  /** queue.chunkSize of the Sluice that will read the queue (default 64 KB) */
  chunkSizeBytes?: number;
  /** rows written per batch (default 5,000) */
  batchRows?: number;
  /** compact the database at the end, as LevelDB would have over the days such a queue took to
   * grow (default true) */
  compact?: boolean;
  /** bytes written per batch at most (default 1 MB): larger batches leave LevelDB a write-ahead
   * log of tens of MB, which the next open replays (seconds, and memory) where a running Sluice
   * leaves one of about its memtable's size */
  batchBytes?: number;
}

export interface QueueFillResult {
  messages: number;
  rows: number;
  ms: number;
  /** the ids written, first and last (ids increase with creation time) */
  firstId: string;
  lastId: string;
}

const HOUR = 3_600_000;
/** synced batches in flight at once: the group committer shares one fsync among them */
const IN_FLIGHT = 4;

export async function fillQueue(queuePath: string, options: QueueFillOptions): Promise<QueueFillResult> {
  const o = {
    rowsPerMessage: 1,
    domains: 1_000,
    zones: ['default'],
    deferredShare: 1,
    dueFrom: Date.now() + HOUR,
    dueSpreadMs: HOUR,
    ageSpreadMs: 48 * HOUR,
    senders: 10,
    bodyBytes: 1_024,
    chunkSizeBytes: 64 * 1024,
    batchRows: 5_000,
    batchBytes: 1024 * 1024,
    compact: true,
    ...options,
  };
  if (!(o.rows > 0) || !(o.rowsPerMessage > 0) || !(o.domains > 0) || !o.zones.length) throw new Error('fillQueue: rows, rowsPerMessage, domains and zones must be positive');
  const started = Date.now();
  const store = await QueueStore.open(queuePath, { chunkSizeBytes: o.chunkSizeBytes, logger: createLogger('silent') });
  const { chunks, bodyHash } = fixtureBody(o.bodyBytes, o.chunkSizeBytes);
  const messages = Math.ceil(o.rows / o.rowsPerMessage);
  const createdFrom = started - o.ageSpreadMs;
  const pending = new Set<Promise<void>>();
  let batch = new QueueBatch();
  let batchRows = 0;
  let batchBytes = 0;
  let rowIndex = 0;
  let firstId = '';
  let lastId = '';
  try {
    for (let m = 0; m < messages; m++) {
      const created = createdFrom + Math.floor((m * o.ageSpreadMs) / messages);
      const id = store.newId(created);
      firstId ||= id;
      lastId = id;
      const zone = o.zones[m % o.zones.length]!;
      const from = `sender${m % 97}@s${m % o.senders}.fill.test`;
      const rcpts = Math.min(o.rowsPerMessage, o.rows - rowIndex);
      const rows: DeliveryRow[] = [];
      for (let seq = 1; seq <= rcpts; seq++, rowIndex++) {
        const domain = `d${rowIndex % o.domains}.fill.test`;
        const deferred = (rowIndex % 1000) / 1000 < o.deferredShare;
        const due = o.dueFrom + Math.floor(((rowIndex * 7919) % o.rows) * (o.dueSpreadMs / o.rows));
        rows.push({
          id,
          seq,
          zone,
          recipient: `user${rowIndex}@${domain}`,
          domain,
          status: deferred ? 'deferred' : 'queued',
          created,
          due,
          attempts: deferred ? 1 : 0,
          ...(deferred ? { firstFailure: created, lastAttempt: created, lastResponse: '451 4.3.0 fixture: try again later', category: 'other' } : {}),
        });
      }
      const headers = fixtureHeaders(id, from, rows[0]!.recipient, created);
      const meta: MessageMeta = {
        id,
        created,
        from,
        rcptCount: rcpts,
        headers,
        bodySize: o.bodyBytes,
        size: Buffer.byteLength(headers, 'latin1') + o.bodyBytes,
        chunks: chunks.length,
        bodyHash,
        messageId: `<${id}@fill.test>`,
        subject: `fixture ${m}`,
        origin: { via: 'api' },
      };
      batch.putBody(id, chunks).putMeta(meta);
      for (const row of rows) batch.putRow(row);
      batchRows += rcpts;
      batchBytes += o.bodyBytes + headers.length + 300 * rcpts;
      if (batchRows >= o.batchRows || batchBytes >= o.batchBytes) {
        await flush(store, batch, pending);
        batch = new QueueBatch();
        batchRows = 0;
        batchBytes = 0;
      }
    }
    if (batch.size) await flush(store, batch, pending);
    await Promise.all(pending);
    // a queue that grew over days has been compacted by LevelDB as it went; one written in
    // seconds has not, and would make the Sluice started on it compact for its first minute
    // (tens of MB written beside its synced commits: bench/README.md "Depth benchmark")
    if (o.compact) await store.compact();
  } finally {
    await store.close();
  }
  return { messages, rows: rowIndex, ms: Date.now() - started, firstId, lastId };
}

async function flush(store: QueueStore, batch: QueueBatch, pending: Set<Promise<void>>): Promise<void> {
  const write = store.write(batch).finally(() => pending.delete(write));
  pending.add(write);
  if (pending.size >= IN_FLIGHT) await Promise.race(pending);
}

/** One body every fixture message shares (its content does not matter, its size does). */
function fixtureBody(bytes: number, chunkSize: number): { chunks: Buffer[]; bodyHash: string } {
  const line = 'The quick brown fox jumps over the lazy dog, a fixture line of the queue.\r\n';
  // ends with CRLF, as a message body on the wire does
  const body = Buffer.concat([Buffer.alloc(Math.max(0, bytes - 2), line), Buffer.from('\r\n')]);
  const hasher = new BodyHasher();
  hasher.update(body);
  const chunks: Buffer[] = [];
  for (let i = 0; i < body.length; i += chunkSize) chunks.push(body.subarray(i, i + chunkSize));
  return { chunks, bodyHash: hasher.digest() };
}

function fixtureHeaders(id: string, from: string, to: string, created: number): string {
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: fixture ${id}`,
    `Message-ID: <${id}@fill.test>`,
    `Date: ${new Date(created).toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    '',
  ].join('\r\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [dir, rows = '100000', domains = '1000'] = process.argv.slice(2);
  if (!dir) {
    process.stderr.write('usage: node dist/bench/queue-fill.js <queue dir> [rows] [domains]\n');
    process.exit(2);
  }
  const result = await fillQueue(dir, { rows: Number(rows), domains: Number(domains) });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
