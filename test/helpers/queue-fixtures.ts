/**
 * Building blocks for queue tests that call the store directly: a store on a fresh temp dir and
 * a message's metadata and rows, shaped as ingest() makes them.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createLogger } from '../../lib/log/logger.js';
import { QueueStore } from '../../lib/queue/store.js';
import type { DeliveryRow, MessageMeta } from '../../lib/queue/types.js';
import { BodyHasher } from '../../lib/message/body-hash.js';

export function tempQueuePath(prefix = 'sluice-queue-'): string {
  return path.join(mkdtempSync(path.join(tmpdir(), prefix)), 'queue');
}

export function openStore(queuePath: string, chunkSizeBytes = 1024): Promise<QueueStore> {
  return QueueStore.open(queuePath, { chunkSizeBytes, logger: createLogger('silent') });
}

/** Streams `body` through a BodyWriter and commits it with one row per recipient. */
export async function storeMessage(store: QueueStore, id: string, body: Buffer, recipients = ['a@dest.test', 'b@dest.test']): Promise<void> {
  const writer = store.bodyWriter(id);
  const hasher = new BodyHasher();
  for (let i = 0; i < body.length; i += 700) {
    const part = body.subarray(i, i + 700);
    hasher.update(part);
    await writer.write(part);
  }
  const { meta, rows } = messageRecords(id, recipients, { bodySize: writer.bytes, chunks: writer.chunks, bodyHash: hasher.digest() });
  await store.commitMessage(meta, rows, writer);
}

export function messageRecords(id: string, recipients: string[], body: { bodySize: number; chunks: number; bodyHash: string }): { meta: MessageMeta; rows: DeliveryRow[] } {
  const now = Date.now();
  const headers = `From: <s@src.test>\r\nSubject: ${id}\r\nX-Test-Id: ${id}\r\n\r\n`;
  const meta: MessageMeta = {
    id,
    created: now,
    from: 's@src.test',
    rcptCount: recipients.length,
    headers,
    bodySize: body.bodySize,
    size: headers.length + body.bodySize,
    chunks: body.chunks,
    bodyHash: body.bodyHash,
    messageId: `<${id}@sluice.test>`,
    subject: id,
    origin: { via: 'smtp' },
  };
  const rows: DeliveryRow[] = recipients.map((recipient, i) => ({
    id,
    seq: i + 1,
    zone: 'default',
    recipient,
    domain: recipient.split('@')[1]!,
    status: 'queued',
    created: now,
    due: now,
    attempts: 0,
  }));
  return { meta, rows };
}
