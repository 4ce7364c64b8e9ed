/**
 * The fault plan's "verify" step: opens the queue LevelDB in the test process (after the master
 * has stopped: LevelDB allows one process) and checks every message a client got 250 for.
 *
 * A message counts as present only when it is whole: its metadata, one delivery row per
 * recipient with its schedule key, and a body whose bytes add up to the stored size and hash to
 * the stored DKIM body hash. Stored copies are grouped by X-Test-Id to count duplicates (a
 * message stored but not acknowledged, then sent again by the client).
 */
import { createLogger } from '../../lib/log/logger.js';
import { allMetas } from './queue-census.js';
import { QueueStore } from '../../lib/queue/store.js';
import { BodyHasher } from '../../lib/message/body-hash.js';

export interface QueueReport {
  /** messages with metadata in the queue */
  stored: number;
  /** acked test ids whose queue id is missing or not whole */
  lost: string[];
  /** why each lost id failed */
  problems: string[];
  /** sum over test ids of (stored copies − 1) */
  duplicates: number;
  /** test id → queue ids stored for it */
  copies: Map<string, string[]>;
  /** bodies (chunks) that belong to no message: leftovers for the collector */
  orphanBodies: number;
}

export function testIdFromHeaders(headers: string): string | undefined {
  return /^X-Test-Id: *([^\r\n]+)/im.exec(headers)?.[1]?.trim();
}

/** Checks one message is whole; returns the problem, or undefined when it is. */
export async function checkWhole(store: QueueStore, id: string, rcptCount: number, testId?: string): Promise<string | undefined> {
  const meta = await store.getMeta(id);
  if (!meta) return `${id}: no metadata`;
  if (testId !== undefined && testIdFromHeaders(meta.headers) !== testId) return `${id}: X-Test-Id is ${testIdFromHeaders(meta.headers)}, expected ${testId}`;
  const rows = await store.getRows(id);
  if (rows.length !== rcptCount || meta.rcptCount !== rcptCount) return `${id}: ${rows.length} rows, meta says ${meta.rcptCount}, expected ${rcptCount}`;
  for (const row of rows) {
    if (!(await store.isScheduled(row))) return `${id}: row ${row.seq} has no schedule key`;
  }
  const hasher = new BodyHasher();
  let bytes = 0;
  let chunks = 0;
  for await (const chunk of store.readBody(id)) {
    bytes += chunk.length;
    chunks++;
    hasher.update(chunk);
  }
  if (bytes !== meta.bodySize || chunks !== meta.chunks) return `${id}: body has ${bytes} bytes in ${chunks} chunks, meta says ${meta.bodySize} in ${meta.chunks}`;
  if (hasher.digest() !== meta.bodyHash) return `${id}: body hash differs from the stored one`;
  return undefined;
}

export { allMetas };

export async function openForCheck(queuePath: string): Promise<QueueStore> {
  return QueueStore.open(queuePath, { chunkSizeBytes: 65536, logger: createLogger('silent') });
}

/** Opens the queue, checks `acked` (test id → queue id), closes it again. */
export async function verifyQueue(queuePath: string, acked: Map<string, string>, rcptCount: number): Promise<QueueReport> {
  const store = await openForCheck(queuePath);
  try {
    const metas = await allMetas(store);
    const copies = new Map<string, string[]>();
    for (const meta of metas) {
      const testId = testIdFromHeaders(meta.headers) ?? '(none)';
      const list = copies.get(testId) ?? [];
      list.push(meta.id);
      copies.set(testId, list);
    }
    const lost: string[] = [];
    const problems: string[] = [];
    for (const [testId, id] of acked) {
      const problem = await checkWhole(store, id, rcptCount, testId);
      if (problem) {
        lost.push(testId);
        problems.push(`${testId}: ${problem}`);
      }
    }
    let duplicates = 0;
    for (const list of copies.values()) duplicates += list.length - 1;
    const withMeta = new Set(metas.map((m) => m.id));
    let orphanBodies = 0;
    for await (const id of store.bodyIds()) {
      if (!withMeta.has(id)) orphanBodies++;
    }
    return { stored: metas.length, lost, problems, duplicates, copies, orphanBodies };
  } finally {
    await store.close();
  }
}
