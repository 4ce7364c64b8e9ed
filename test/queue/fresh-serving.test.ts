/**
 * When the fresh lane is served (lib/queue/fresh-serving.ts), on a clock the test moves: at once
 * when the pump asks, with rows a domain limit holds back marked on the disk; before a scan only
 * once the oldest offer waited FRESH_MAX_WAIT_MS, on every other such pass, to at most half the
 * workers asking.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FreshLane } from '../../lib/queue/fresh-lane.js';
import { FRESH_MAX_WAIT_MS, FreshServing } from '../../lib/queue/fresh-serving.js';
import { rowKey } from '../../lib/queue/leases.js';
import { messageRecords } from '../helpers/queue-fixtures.js';
import { servingKit } from '../helpers/serving.js';

function setup() {
  const kit = servingKit();
  const lane = new FreshLane();
  const serving = new FreshServing({
    ...kit.deps,
    lane,
    grant: (zone, domain, meta, rows, owner) => {
      lane.taken(rows); // as the scheduler's grant does
      return kit.deps.grant(zone, domain, meta, rows, owner);
    },
  });
  /** offers a message to `recipients` now, as a commit does */
  const offer = (id: string, recipients: string[]) => {
    const { meta, rows } = messageRecords(id, recipients, { bodySize: 1, chunks: 1, bodyHash: 'h' });
    assert.equal(lane.add('default', meta, rows, kit.clock.now()), true);
  };
  kit.state.disk.dirty = false;
  return { ...kit, lane, serving, offer };
}

test('serve hands every offer to the workers waiting, oldest first, and leaves the disk alone', () => {
  const { serving, state, handed, leases, lane, offer, ask } = setup();
  offer('a', ['1@x.test', '2@y.test']);
  offer('b', ['1@x.test']);
  ask('w1', 'w2', 'w3', 'w4');
  serving.serve('default', state);
  assert.deepEqual(
    handed.map((h) => [h.owner, h.job.id, h.job.domain]),
    [
      ['w1', 'a', 'x.test'],
      ['w2', 'a', 'y.test'],
      ['w3', 'b', 'x.test'],
    ],
  );
  assert.deepEqual(state.waiters.map((w) => w.owner), ['w4']);
  assert.equal(leases.rowCount, 3);
  assert.equal(lane.pending('default'), 0);
  assert.deepEqual([state.disk.dirty, state.disk.blocked], [false, false]);
});

test('rows a domain limit holds back go to the disk, which is marked to scan when a slot frees', () => {
  const { serving, state, handed, lane, full, offer, ask } = setup();
  offer('a', ['1@x.test', '2@y.test']);
  full.add('x.test');
  ask('w1', 'w2');
  serving.serve('default', state);
  assert.deepEqual(handed.map((h) => h.job.domain), ['y.test']);
  assert.equal(lane.isOffered(rowKey('a', 1)), false, 'the scan may find the held-back row');
  assert.deepEqual([state.disk.dirty, state.disk.blocked], [true, true]);
});

test('before a scan, fresh mail waits FRESH_MAX_WAIT_MS; then it goes on every other pass', () => {
  const { serving, state, handed, clock, offer, ask } = setup();
  offer('a', ['1@x.test']);
  offer('b', ['1@y.test']);
  offer('c', ['1@z.test']);
  ask('w1');
  clock.advance(FRESH_MAX_WAIT_MS - 1);
  serving.serveWaited('default', state);
  assert.equal(handed.length, 0, 'not yet waited long enough: older work goes first');
  assert.equal(state.freshTurn, true, 'no turn was taken');

  clock.advance(1);
  serving.serveWaited('default', state);
  assert.deepEqual(handed.map((h) => h.job.id), ['a'], "fresh mail's turn");
  ask('w1');
  serving.serveWaited('default', state);
  assert.deepEqual(handed.map((h) => h.job.id), ['a'], "the disk's turn");
  serving.serveWaited('default', state);
  assert.deepEqual(handed.map((h) => h.job.id), ['a', 'b'], "fresh mail's turn again");
});

test('waited fresh mail goes to at most half the workers asking (rounded up); the scan gets the rest', () => {
  const { serving, state, handed, clock, offer, ask } = setup();
  for (const id of ['a', 'b', 'c', 'd', 'e']) offer(id, [`1@${id}.test`]);
  ask('w1', 'w2', 'w3', 'w4', 'w5');
  clock.advance(FRESH_MAX_WAIT_MS);
  serving.serveWaited('default', state);
  assert.deepEqual(handed.map((h) => h.job.id), ['a', 'b', 'c']);
  assert.equal(state.waiters.length, 2, 'left for the scan');
});

test('only offers that waited long enough go ahead of the disk; a held-back row marks the disk blocked', () => {
  const { serving, state, handed, clock, full, offer, ask } = setup();
  offer('old', ['1@x.test', '2@y.test']);
  clock.advance(FRESH_MAX_WAIT_MS);
  offer('new', ['1@z.test']);
  full.add('x.test');
  ask('w1', 'w2', 'w3', 'w4');
  serving.serveWaited('default', state);
  assert.deepEqual(handed.map((h) => h.job.id + ' ' + h.job.domain), ['old y.test']);
  assert.equal(state.disk.blocked, true);
  assert.equal(state.disk.dirty, false, 'the scan that follows reads the rows given back');
});
