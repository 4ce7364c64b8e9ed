/**
 * AuthFailures: failed logins per address, blocked past the limit until the window (from the
 * first failure) ends; IPv6 counted per /64, IPv4-mapped IPv6 as IPv4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthFailures } from '../../lib/accept/auth-failures.js';

test('blocked at the limit, free again when the window from the first failure ends', () => {
  let now = 1_000_000;
  const f = new AuthFailures(3, 60_000, () => now);
  assert.equal(f.blocked('192.0.2.1'), false);
  f.note('192.0.2.1');
  now += 30_000;
  f.note('192.0.2.1');
  assert.equal(f.blocked('192.0.2.1'), false);
  assert.equal(f.note('192.0.2.1'), 3);
  assert.equal(f.blocked('192.0.2.1'), true);
  assert.equal(f.blocked('192.0.2.2'), false, 'another address');
  assert.equal(f.until('192.0.2.1'), 1_000_000 + 60_000);
  now = 1_000_000 + 60_000;
  assert.equal(f.blocked('192.0.2.1'), false, 'the window is over');
  assert.equal(f.note('192.0.2.1'), 1, 'a new window');
});

test('IPv6 addresses of one /64 count together; an IPv4-mapped address counts as IPv4', () => {
  const f = new AuthFailures(2, 60_000);
  f.note('2001:db8:1:2::1');
  f.note('2001:db8:1:2:ffff::9');
  assert.equal(f.blocked('2001:db8:1:2::77'), true);
  assert.equal(f.blocked('2001:db8:1:3::1'), false, 'the next /64');
  f.note('::ffff:198.51.100.7');
  f.note('198.51.100.7');
  assert.equal(f.blocked('198.51.100.7'), true);
});
