/**
 * The fresh lane (lib/queue/fresh-lane.ts): offers go out oldest first, one job per message and
 * domain; rows a domain limit holds back go back to the disk; offers past the byte bound are
 * refused; a forgotten message is never handed out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreshLane, MAX_FRESH_BYTES } from '../../lib/queue/fresh-lane.js';
import { rowKey } from '../../lib/queue/leases.js';
import type { DeliveryRow, MessageMeta } from '../../lib/queue/types.js';
import { messageRecords } from '../helpers/queue-fixtures.js';

const records = (id: string, to: string[]) => messageRecords(id, to, { bodySize: 1, chunks: 1, bodyHash: 'h' });

function serveTo(lane: FreshLane, waiters: string[], allow: (domain: string) => boolean = () => true) {
  const granted: { waiter: string; id: string; domain: string; seqs: number[] }[] = [];
  const blocked = lane.serve('default', {
    maxRows: 2,
    waiters,
    claim: (domain) => (allow(domain) ? waiters.shift() : undefined),
    grant: (waiter: string, domain: string, meta: MessageMeta, rows: DeliveryRow[]) => {
      lane.taken(rows);
      granted.push({ waiter, id: meta.id, domain, seqs: rows.map((r) => r.seq) });
    },
  });
  return { granted, blocked };
}

test('oldest first, one job per message and domain, at most maxRows rows each', () => {
  const lane = new FreshLane();
  const a = records('a', ['1@x.test', '2@y.test', '3@x.test', '4@x.test']);
  const b = records('b', ['1@x.test']);
  assert.equal(lane.add('default', a.meta, a.rows), true);
  assert.equal(lane.add('default', b.meta, b.rows), true);
  const { granted, blocked } = serveTo(lane, ['w1', 'w2', 'w3', 'w4']);
  assert.equal(blocked, false);
  assert.deepEqual(granted, [
    { waiter: 'w1', id: 'a', domain: 'x.test', seqs: [1, 3] },
    { waiter: 'w2', id: 'a', domain: 'x.test', seqs: [4] },
    { waiter: 'w3', id: 'a', domain: 'y.test', seqs: [2] },
    { waiter: 'w4', id: 'b', domain: 'x.test', seqs: [1] },
  ]);
  assert.equal(lane.pending('default'), 0);
  assert.equal(lane.totalBytes, 0);
});

test('with every worker busy the rest of a message waits in the lane', () => {
  const lane = new FreshLane();
  const a = records('a', ['1@x.test', '2@y.test']);
  lane.add('default', a.meta, a.rows);
  const first = serveTo(lane, ['w1']);
  assert.equal(first.granted.length, 1);
  assert.equal(lane.pending('default'), 1);
  assert.equal(lane.isOffered(rowKey('a', 2)), true);
  const second = serveTo(lane, ['w2']);
  assert.deepEqual(second.granted.map((g) => g.domain), ['y.test']);
  assert.equal(lane.pending('default'), 0);
});

test('rows whose domain may not start while workers wait go back to the disk', () => {
  const lane = new FreshLane();
  const a = records('a', ['1@x.test', '2@y.test']);
  lane.add('default', a.meta, a.rows);
  const { granted, blocked } = serveTo(lane, ['w1', 'w2'], (d) => d !== 'x.test');
  assert.equal(blocked, true);
  assert.deepEqual(granted.map((g) => g.domain), ['y.test']);
  assert.equal(lane.isOffered(rowKey('a', 1)), false, 'the scan may now find the held-back row');
});

test('a forgotten message is never handed out; offers past the byte bound are refused', () => {
  const lane = new FreshLane();
  const a = records('a', ['1@x.test']);
  lane.add('default', a.meta, a.rows);
  lane.forget('a');
  assert.equal(serveTo(lane, ['w1']).granted.length, 0);
  assert.equal(lane.totalBytes, 0);
  const big = records('big', ['1@x.test']);
  big.meta.headers = 'X: ' + 'y'.repeat(MAX_FRESH_BYTES);
  assert.equal(lane.add('default', big.meta, big.rows), false);
  assert.equal(lane.isOffered(rowKey('big', 1)), false);
});
