/**
 * A zone's wake-up (lib/queue/zone-timer.ts) on a clock the test moves: one timer, the earliest
 * wanted; `arm` wakes for the next due row or an easing limit, at the latest at the idle recheck
 * and never sooner than its minimum wait; once stopped, nothing is set again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IDLE_RECHECK_MS, MIN_ARM_WAIT_MS, ZoneTimer } from '../../lib/queue/zone-timer.js';
import { ManualClock } from '../helpers/manual-clock.js';

function setup() {
  const clock = new ManualClock();
  const fired: number[] = [];
  const timer = new ZoneTimer(clock, () => fired.push(clock.now()));
  return { clock, timer, fired, t0: clock.now() };
}

test('the earliest wake-up wins: a later one is ignored, an earlier one replaces it', () => {
  const { clock, timer, fired, t0 } = setup();
  timer.wakeAt(t0 + 500);
  timer.wakeAt(t0 + 900);
  assert.equal(timer.atMs, t0 + 500, 'a later wish does not push it back');
  timer.wakeIn(200);
  assert.equal(timer.atMs, t0 + 200);
  assert.equal(clock.pending, 1, 'one timer per zone');
  clock.advance(1000);
  assert.deepEqual(fired, [t0 + 200], 'fires once, at the earliest time wanted');
  assert.equal(timer.atMs, undefined, 'unset once fired');
  timer.wakeIn(300);
  clock.advance(300);
  assert.deepEqual(fired, [t0 + 200, t0 + 1300], 'set again after it fired');
});

test('arm wakes for the next due row or an easing limit, whichever comes first', async () => {
  const { timer, t0 } = setup();
  await timer.arm(
    async () => t0 + 3000,
    () => t0 + 2000,
  );
  assert.equal(timer.atMs, t0 + 2000, 'the limit eases first');

  const other = setup();
  await other.timer.arm(
    async () => other.t0 + 1500,
    () => undefined,
  );
  assert.equal(other.timer.atMs, other.t0 + 1500, 'the next due row');
});

test('arm with nothing due waits for the idle recheck; a row already due waits the minimum', async () => {
  const idle = setup();
  await idle.timer.arm(
    async () => undefined,
    () => undefined,
  );
  assert.equal(idle.timer.atMs, idle.t0 + IDLE_RECHECK_MS);

  const due = setup();
  await due.timer.arm(
    async () => due.t0 - 50,
    () => undefined,
  );
  assert.equal(due.timer.atMs, due.t0 + MIN_ARM_WAIT_MS, 'a row due now is looked at soon, not in a tight loop');
});

test('arm measures from when it started, not from when the disk answered', async () => {
  const { clock, timer, t0 } = setup();
  await timer.arm(
    async () => {
      clock.advance(40); // the read took 40 ms
      return undefined;
    },
    () => undefined,
  );
  assert.equal(timer.atMs, t0 + IDLE_RECHECK_MS);
});

test('stop cancels the wake-up and no later one is set', () => {
  const { clock, timer, fired, t0 } = setup();
  timer.wakeAt(t0 + 100);
  timer.stop();
  timer.wakeAt(t0 + 50);
  assert.equal(timer.atMs, undefined);
  clock.advance(1000);
  assert.deepEqual(fired, []);
  assert.equal(clock.pending, 0);
});
