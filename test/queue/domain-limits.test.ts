/**
 * DomainLimits (lib/queue/domain-limits.ts): a connection counted for a job that then fell
 * through (unclaim) gives back its place in the per-minute window as well as the connection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../lib/config/load.js';
import { DomainLimits } from '../../lib/queue/domain-limits.js';
import { tempDir } from '../helpers/master.js';

function limits(rate: number, perDomain = 10) {
  const { config } = loadConfig({ appDir: tempDir(), env: {}, overrides: { zones: { default: { processes: 0, domainRatePerMinute: rate, connectionsPerDomain: perDomain } } } });
  let now = 1_000_000;
  return { l: new DomainLimits(config, () => now), advance: (ms: number) => (now += ms) };
}

test('a start counts against the minute; an unclaimed one does not', () => {
  const { l, advance } = limits(2);
  l.acquire('default', 'd.test');
  l.unclaim('default', 'd.test');
  assert.equal(l.activeFor('default', 'd.test'), 0);
  l.acquire('default', 'd.test');
  l.release('default', 'd.test');
  assert.ok(l.mayStart('default', 'd.test'), 'one real start of two');
  l.acquire('default', 'd.test');
  l.release('default', 'd.test');
  assert.equal(l.mayStart('default', 'd.test'), false, 'two real starts: the minute is full');
  advance(60_001);
  assert.ok(l.mayStart('default', 'd.test'), 'a minute later');
});

test('unclaim after useHold gives the rate place back too', () => {
  const { l } = limits(1);
  l.hold('default', 'd.test', 'w1', 2_000_000);
  assert.ok(l.useHold('default', 'd.test', 'w1'));
  l.unclaim('default', 'd.test');
  assert.ok(l.mayStart('default', 'd.test'));
});

test('a domain keeps an entry only while it has work: 1,000 domains with connections, rate windows and idle sessions leave none a minute later', () => {
  const { l, advance } = limits(60);
  for (let d = 0; d < 1000; d++) {
    l.acquire('default', `d${d}.test`);
    l.release('default', `d${d}.test`);
    if (d % 2) l.hold('default', `d${d}.test`, 'w1', 1_000_000 + 6_000);
  }
  assert.equal(l.entries, 1000, 'each domain has its start of the minute (and half an idle session)');
  advance(30_000);
  assert.ok(l.nextFreeAt('default')! > 1_000_000, 'the next easing: the first start leaving the window');
  assert.equal(l.entries, 1000, 'idle sessions expired, starts still in the window');
  advance(31_000);
  assert.equal(l.nextFreeAt('default'), undefined, 'nothing left to ease');
  assert.equal(l.entries, 0, 'every entry released');
});

test('claim: the worker holding an idle session to the domain goes first, else the first waiter while the limits allow', () => {
  const { l } = limits(0, 2);
  const free = [{ owner: 'w1' }, { owner: 'w2' }, { owner: 'w3' }];
  l.hold('default', 'd.test', 'w2', 2_000_000);
  assert.equal(l.claim('default', 'd.test', free)?.owner, 'w2', 'its idle session needs no new connection');
  assert.equal(l.claim('default', 'd.test', free)?.owner, 'w1');
  assert.equal(l.claim('default', 'd.test', free), undefined, 'two connections: the limit');
  assert.deepEqual(free.map((w) => w.owner), ['w3'], 'a waiter not claimed stays');
  assert.equal(l.activeFor('default', 'd.test'), 2);
});
