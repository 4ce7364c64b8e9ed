/**
 * Reads a queued message back as its bytes (stored header block + body chunks) and walks its
 * MIME tree with mailsplit's Splitter, so tests can assert on every part's header lines — e.g.
 * that no request could add a Bcc or a second Content-Type.
 */
import { Readable } from 'node:stream';
import mailsplit, { type HeaderLine, type SplitterChunk, type SplitterNode } from 'mailsplit';
import type { QueueStore } from '../../lib/queue/store.js';

export interface StoredPart {
  root: boolean;
  contentType: string | false;
  lines: HeaderLine[];
  /** the decoded-as-latin1 raw body bytes of this part (not of its children) */
  body: string;
}

export async function storedBytes(store: QueueStore, id: string): Promise<Buffer> {
  const meta = await store.getMeta(id);
  if (!meta) throw new Error(`no message ${id}`);
  const chunks: Buffer[] = [Buffer.from(meta.headers, 'latin1')];
  for await (const chunk of store.readBody(id)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

export async function mimeParts(message: Buffer): Promise<StoredPart[]> {
  const parts: StoredPart[] = [];
  const splitter = new mailsplit.Splitter();
  const done = new Promise<void>((resolve, reject) => {
    splitter.on('data', (item: SplitterNode | SplitterChunk) => {
      if (item.type === 'node') {
        parts.push({ root: item.root, contentType: item.contentType, lines: item.headers.getList(), body: '' });
      } else if (item.type === 'body' && parts.length) {
        parts[parts.length - 1]!.body += item.value.toString('latin1');
      }
    });
    splitter.on('end', resolve);
    splitter.on('error', reject);
  });
  Readable.from([message]).pipe(splitter);
  await done;
  return parts;
}

/** Header keys (lower case) of a part, in order. */
export function keysOf(part: StoredPart): string[] {
  return part.lines.map((l) => l.key.toLowerCase());
}
