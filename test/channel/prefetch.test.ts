/**
 * A job whose body is at hand in the master travels with its body frames: the worker reads the
 * chunks without asking, over a real TCP channel, and asks the master again once the job's
 * result is reported (a retry of that message reads from the queue). A channel that drops while
 * body frames are still arriving fails the fetch, it does not hang.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { ChannelServer } from '../../lib/channel/server.js';
import { encodeBody, encodeJson, FrameDecoder, FRAME_JSON } from '../../lib/channel/frames.js';
import { PROTOCOL_VERSION } from '../../lib/channel/protocol.js';
import { ChannelClient, ChannelClosedError } from '../../lib/channel/client.js';
import type { Job } from '../../lib/channel/protocol.js';
import { createLogger } from '../../lib/log/logger.js';

const JOB: Job = {
  leaseId: 'lease-1',
  id: 'msg-1',
  zone: 'default',
  domain: 'dest.test',
  from: 's@src.test',
  rows: [{ seq: 1, recipient: 'r@dest.test' }],
  headers: 'Subject: x\r\n\r\n',
  bodyHash: 'x',
  size: 0,
  chunks: 2,
  messageId: '<x@src.test>',
  created: 0,
  attempts: 0,
};
const BODY = [Buffer.alloc(70_000, 'a'), Buffer.from('tail\r\n')];

async function setup(prefetch: (job: Job) => readonly Buffer[] | undefined) {
  const reads: string[] = [];
  const server = new ChannelServer(
    {
      credentials: () => ({ secret: 's3cret', zone: 'default' }),
      fetch: async () => JOB,
      readChunk: async (id, n) => {
        reads.push(`${id}:${n}`);
        return BODY[n];
      },
      prefetch,
      result: async () => undefined,
      closed: () => undefined,
    },
    createLogger('silent'),
  );
  const addr = await server.listen('127.0.0.1', 0);
  const client = new ChannelClient();
  await client.connect({ host: '127.0.0.1', port: addr.port, zone: 'default', workerId: 'w1', secret: 's3cret' });
  return { server, client, reads };
}

test('a prefetched body is read without asking the master, until the job is reported', { timeout: 10_000 }, async () => {
  const { server, client, reads } = await setup(() => BODY);
  try {
    const job = await client.fetch();
    assert.equal(job.prefetched, 2);
    const joined = async (n: number) => Buffer.concat((await client.chunk(job.id, n)) ?? []);
    assert.deepEqual([await joined(0), await joined(1)], BODY);
    assert.deepEqual(reads, [], 'the worker asked for nothing');
    await client.result(job.leaseId, [{ seq: 1, outcome: 'deferred', response: '451 later' }]);
    assert.deepEqual(await joined(1), BODY[1]);
    assert.deepEqual(reads, ['msg-1:1'], 'after the result, the body comes from the master again');
  } finally {
    client.close();
    await server.close();
  }
});

test('the channel dropping while prefetched body frames arrive fails the fetch', { timeout: 10_000 }, async () => {
  // a master that announces two body frames, sends one, and is gone
  const raw = net.createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        if (f.kind !== FRAME_JSON) continue;
        const m = f.message as { type: string; req: number; workerId?: string };
        if (m.type === 'hello') socket.write(encodeJson({ type: 'welcome', version: PROTOCOL_VERSION, workerId: m.workerId }));
        if (m.type === 'fetch') {
          socket.write(encodeJson({ type: 'job', req: m.req, job: { ...JOB, prefetched: 2 } }));
          for (const part of encodeBody(m.req, BODY[0]!)) socket.write(part);
          socket.end(() => socket.destroy());
        }
      }
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  const client = new ChannelClient();
  try {
    await client.connect({ host: '127.0.0.1', port: (raw.address() as net.AddressInfo).port, zone: 'default', workerId: 'w1', secret: 'x' });
    await assert.rejects(client.fetch(), ChannelClosedError);
  } finally {
    client.close();
    await new Promise((resolve) => raw.close(resolve));
  }
});
