/**
 * The master's unasked messages on a real TCP channel: `cancel` reaches the worker that holds the
 * lease (and no other), and `drop` cuts that one worker's connection, which the master sees as
 * closed (its leases are released) and the worker as a lost channel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelServer, type ChannelPeer } from '../../lib/channel/server.js';
import { ChannelClient } from '../../lib/channel/client.js';
import { createLogger } from '../../lib/log/logger.js';

async function twoWorkers() {
  const closed: ChannelPeer[] = [];
  const owners = new Map<string, string>();
  const server = new ChannelServer(
    {
      credentials: () => ({ secret: 's3cret', zone: 'default' }),
      fetch: (peer) => {
        owners.set(peer.workerId, peer.owner);
        return new Promise(() => undefined); // nothing due: the long poll just waits
      },
      readChunk: async () => undefined,
      result: async () => undefined,
      closed: (peer) => closed.push(peer),
    },
    createLogger('silent'),
  );
  const { port } = await server.listen('127.0.0.1', 0);
  const connect = async (workerId: string) => {
    const client = new ChannelClient();
    await client.connect({ host: '127.0.0.1', port, zone: 'default', workerId, secret: 's3cret' });
    const cancelled: string[] = [];
    client.onCancel = (leaseId) => cancelled.push(leaseId);
    void client.fetch().catch(() => undefined);
    return { client, cancelled };
  };
  const a = await connect('w1');
  const b = await connect('w2');
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(cond());
  };
  await until(() => owners.size === 2);
  return { server, a, b, owner: (id: string) => owners.get(id)!, closed, until };
}

test('cancel reaches the worker that holds the lease, and only it', { timeout: 10_000 }, async () => {
  const { server, a, b, owner, until } = await twoWorkers();
  try {
    assert.deepEqual(server.connected().sort(), ['w1', 'w2']);
    server.cancel(owner('w1'), 'lease-7');
    await until(() => a.cancelled.length === 1);
    assert.deepEqual(a.cancelled, ['lease-7']);
    assert.deepEqual(b.cancelled, []);
  } finally {
    a.client.close();
    b.client.close();
    await server.close();
  }
});

test('drop cuts one worker: the master sees it closed, the worker sees its channel lost', { timeout: 10_000 }, async () => {
  const { server, a, b, owner, closed, until } = await twoWorkers();
  try {
    let lost = false;
    a.client.onClose = () => (lost = true);
    server.drop(owner('w1'));
    await until(() => lost && closed.length === 1);
    assert.equal(closed[0]!.workerId, 'w1');
    assert.deepEqual(server.connected(), ['w2']);
    assert.equal(b.client.isClosed, false);
  } finally {
    a.client.close();
    b.client.close();
    await server.close();
  }
});
