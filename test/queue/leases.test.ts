/**
 * The lease table (lib/queue/leases.ts) on a clock the test moves: a lease holds its rows until it
 * is removed; an expired lease's worker is told to cancel, cut off after the grace period, and a
 * lease whose outcome is being written never expires. An operator's pin takes free rows only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../lib/log/logger.js';
import { cancelGraceMs, LeaseTable, type Lease } from '../../lib/queue/leases.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { messageRecords } from '../helpers/queue-fixtures.js';

const LEASE_MS = 60_000;

function setup(withEnforcer = true) {
  const clock = new ManualClock();
  const ended: string[] = [];
  const expired: Lease[] = [];
  const abandoned: string[] = [];
  const enforcer = withEnforcer ? { expired: (l: Lease) => expired.push(l), abandoned: (owner: string) => abandoned.push(owner) } : undefined;
  const table = new LeaseTable({ leaseTimeoutMs: LEASE_MS, clock, logger: createLogger('silent'), enforcer, end: (id) => (ended.push(id), table.remove(id)) });
  const { meta, rows } = messageRecords('m1', ['a@x.test', 'b@x.test'], { bodySize: 1, chunks: 1, bodyHash: 'h' });
  return { clock, table, meta, rows, ended, expired, abandoned };
}

test('a lease holds its rows until it is removed, and only those', () => {
  const { table, meta, rows } = setup();
  const lease = table.grant('w1', 'default', 'x.test', meta, rows.slice(0, 1));
  assert.equal(table.isLeased('m1', rows[0]!.seq), true);
  assert.equal(table.isLeased('m1', rows[1]!.seq), false);
  assert.equal(table.rowCount, 1);
  assert.equal(table.countOf('w1'), 1);
  assert.equal(table.remove(lease.leaseId), lease);
  assert.equal(table.isLeased('m1', rows[0]!.seq), false);
  assert.equal(table.remove(lease.leaseId), undefined, 'a lease ends once');
});

test('an expired lease: its worker is told to cancel, then cut off after the grace period', () => {
  const { clock, table, meta, rows, expired, abandoned, ended } = setup();
  const lease = table.grant('w1', 'default', 'x.test', meta, rows);
  clock.advance(LEASE_MS - 1);
  assert.equal(expired.length, 0);
  clock.advance(1);
  assert.deepEqual(expired.map((l) => l.leaseId), [lease.leaseId], 'told to cancel at the lease timeout');
  assert.equal(table.isLeased('m1', rows[0]!.seq), true, 'the rows stay taken while the attempt may run');
  clock.advance(cancelGraceMs(LEASE_MS));
  assert.deepEqual(abandoned, ['w1'], 'cut off after the grace period');
  assert.deepEqual(ended, [lease.leaseId], 'and the lease ends');
  assert.equal(table.rowCount, 0);
});

test('a lease whose outcome is being written never expires', () => {
  const { clock, table, meta, rows, expired, ended } = setup();
  const lease = table.grant('w1', 'default', 'x.test', meta, rows);
  lease.reporting = true;
  clock.advance(LEASE_MS * 10);
  assert.equal(expired.length, 0);
  assert.equal(ended.length, 0);
  assert.equal(table.isLeased('m1', rows[0]!.seq), true);
  assert.deepEqual(table.releasableOf('w1'), [], 'not released with its worker either');
});

test('without an enforcer an expired lease simply ends; a removed lease leaves no timer', () => {
  const { clock, table, meta, rows, ended } = setup(false);
  const a = table.grant('w1', 'default', 'x.test', meta, rows.slice(0, 1));
  const b = table.grant('w2', 'default', 'x.test', meta, rows.slice(1));
  table.remove(b.leaseId);
  clock.advance(LEASE_MS);
  assert.deepEqual(ended, [a.leaseId]);
  assert.equal(clock.pending, 0);
});

test('a pin takes the free rows out of the scheduler\'s hands until unpin; leased and pinned rows are left out', () => {
  const { table, meta, rows } = setup();
  const [r1, r2] = rows as [(typeof rows)[0], (typeof rows)[0]];
  table.grant('w1', 'default', 'x.test', meta, [r1]);
  const pinned = table.pin(rows);
  assert.deepEqual(pinned, [r2], 'the leased row is left out: its attempt runs and its outcome decides');
  assert.equal(table.isTaken('m1', r2.seq), true);
  assert.equal(table.isLeased('m1', r2.seq), false, 'pinned, not leased');
  assert.deepEqual(table.pin([r2]), [], 'a row is pinned by one change at a time');
  table.unpin(pinned);
  assert.equal(table.isTaken('m1', r2.seq), false);
  assert.equal(table.isTaken('m1', r1.seq), true, 'the lease still holds its row');
});

test('rows leased per zone', () => {
  const { table, meta, rows } = setup();
  assert.deepEqual(table.rowsByZone(), {});
  table.grant('w1', 'other', 'x.test', meta, rows);
  assert.deepEqual(table.rowsByZone(), { other: 2 });
});
