/**
 * GcNudge (lib/app/gc-nudge.ts): one ballast buffer per 16 MB of mail, at most one per interval,
 * and a ballast costs no resident memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GC_NUDGE_DEFAULTS, GcNudge } from '../../lib/app/gc-nudge.js';

test('a ballast is dropped after every `everyBytes` of mail, at most once per interval', () => {
  let clock = 0;
  const sizes: number[] = [];
  const nudge = new GcNudge({ everyBytes: 1000, ballastBytes: 64, minIntervalMs: 250 }, (n) => sizes.push(n), () => clock);
  for (let i = 0; i < 9; i++) nudge.note(100);
  assert.equal(nudge.nudges, 0);
  nudge.note(100);
  assert.deepEqual(sizes, [64]);
  clock = 100;
  for (let i = 0; i < 30; i++) nudge.note(100);
  assert.equal(nudge.nudges, 1, 'within the interval');
  clock = 300;
  nudge.note(1);
  assert.equal(nudge.nudges, 2, 'the bytes counted meanwhile are enough once the interval is over');
});

test('the default ballast is a lazily mapped buffer: it adds no resident memory', () => {
  const before = process.memoryUsage.rss();
  const nudge = new GcNudge();
  nudge.note(GC_NUDGE_DEFAULTS.everyBytes);
  assert.equal(nudge.nudges, 1);
  const grown = process.memoryUsage.rss() - before;
  assert.ok(grown < 8 * 1024 * 1024, `RSS grew by ${grown} bytes for a ${GC_NUDGE_DEFAULTS.ballastBytes}-byte ballast`);
});
