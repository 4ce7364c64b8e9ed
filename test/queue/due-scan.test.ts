/**
 * One pass of the due index (lib/queue/due-scan.ts) over given entries: rows of a message group
 * by domain, taken rows are skipped, a domain at its limit is passed over, the budget stops the
 * pass with a cursor, and a pass without free workers says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scanDueRows } from '../../lib/queue/due-scan.js';
import type { DueEntry } from '../../lib/queue/codec.js';

function entries(list: [string, number, string][]): DueEntry[] {
  return list.map(([id, seq, domain], i) => ({ id, seq, domain, dueMs: 1000 + i, cursor: `k${i}` }));
}

async function* stream(list: DueEntry[]): AsyncGenerator<DueEntry> {
  yield* list;
}

function scan(list: DueEntry[], free: string[], opts: { budget?: number; taken?: string[]; full?: string[] } = {}) {
  return scanDueRows(stream(list), {
    budget: opts.budget ?? 100,
    maxRows: 2,
    free,
    isTaken: (id, seq) => (opts.taken ?? []).includes(`${id}:${seq}`),
    claim: (domain, waiting) => ((opts.full ?? []).includes(domain) ? undefined : waiting.shift()),
  });
}

test('the rows of a message group by domain, up to maxRows each', async () => {
  const r = await scan(entries([['a', 1, 'x'], ['a', 2, 'y'], ['a', 3, 'x'], ['a', 4, 'x'], ['b', 1, 'x']]), ['w1', 'w2', 'w3', 'w4']);
  assert.deepEqual(r.groups.map((g) => [g.waiter, g.id, g.domain, g.keys.map((k) => k.seq)]), [
    ['w1', 'a', 'x', [1, 3]],
    ['w2', 'a', 'y', [2]],
    ['w3', 'a', 'x', [4]],
    ['w4', 'b', 'x', [1]],
  ]);
  assert.equal(r.unread, false);
  assert.equal(r.stoppedEarly, false);
});

test('taken rows are skipped; a domain at its limit is passed over and reported blocked', async () => {
  const r = await scan(entries([['a', 1, 'x'], ['a', 2, 'y'], ['b', 1, 'y']]), ['w1', 'w2'], { taken: ['a:2'], full: ['x'] });
  assert.deepEqual(r.groups.map((g) => [g.id, g.domain]), [['b', 'y']]);
  assert.equal(r.blocked, true);
});

test('the budget stops a pass with the cursor of the last entry read', async () => {
  const r = await scan(entries([['a', 1, 'x'], ['b', 1, 'x'], ['c', 1, 'x']]), ['w1', 'w2', 'w3'], { budget: 2 });
  assert.equal(r.unread, true);
  assert.equal(r.cursor, 'k1');
  assert.equal(r.groups.length, 2);
});

test('a pass that runs out of free workers stops early', async () => {
  const r = await scan(entries([['a', 1, 'x'], ['b', 1, 'x']]), ['w1']);
  assert.equal(r.groups.length, 1);
  assert.equal(r.stoppedEarly, true);
});
