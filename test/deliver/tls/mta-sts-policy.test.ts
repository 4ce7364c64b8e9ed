/**
 * MTA-STS as text (RFC 8461 §3.1, §3.2, §4.1): the TXT record, the policy file and MX patterns,
 * with the malformed inputs a sender meets in the wild.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mxMatches, parseStsPolicy, parseStsTxt, policyAllows, StsPolicyError } from '../../../lib/deliver/tls/mta-sts-policy.js';

test('TXT: one STSv1 record with a valid id gives the id; anything else is no policy', () => {
  assert.equal(parseStsTxt(['v=STSv1; id=20240101T000000']), '20240101T000000');
  assert.equal(parseStsTxt(['v=STSv1;id=abc123;']), 'abc123', 'no spaces, a trailing delimiter');
  assert.equal(parseStsTxt(['v=spf1 -all', 'v=STSv1; id=x1']), 'x1', 'other TXT records are ignored');
  assert.equal(parseStsTxt(['v=STSv1; id=a', 'v=STSv1; id=b']), undefined, 'two STSv1 records: no policy');
  assert.equal(parseStsTxt([]), undefined);
  assert.equal(parseStsTxt(['v=STSv1']), undefined, 'no id');
  assert.equal(parseStsTxt(['v=STSv1; id=']), undefined, 'empty id');
  assert.equal(parseStsTxt(['v=STSv1; id=has-dash']), undefined, 'id is alphanumeric only');
  assert.equal(parseStsTxt([`v=STSv1; id=${'a'.repeat(33)}`]), undefined, 'id at most 32 characters');
  assert.equal(parseStsTxt(['v=STSv10; id=x']), undefined, 'another version');
  assert.equal(parseStsTxt(['id=x; v=STSv1']), undefined, 'the version comes first');
  assert.equal(parseStsTxt(['v=STSv1; id=x; junk']), undefined, 'a field without =');
});

test('policy: a good one parses, CRLF or LF, unknown keys ignored, mx patterns lower-cased', () => {
  const p = parseStsPolicy('version: STSv1\r\nmode: enforce\r\nmx: MX1.Example.test\r\nmx: *.backup.example.test\r\nmax_age: 86400\r\nextension: whatever\r\n');
  assert.deepEqual(p, { mode: 'enforce', mx: ['mx1.example.test', '*.backup.example.test'], maxAgeS: 86400 });
  assert.equal(parseStsPolicy('version: STSv1\nmode: testing\nmx: mx.example.test\nmax_age: 0\n').mode, 'testing');
  assert.deepEqual(parseStsPolicy('version: STSv1\nmode: none\nmax_age: 31557600').mx, [], 'mode none needs no mx');
});

test('policy: malformed files are refused with the reason', () => {
  const bad: [string, RegExp][] = [
    ['', /first field|no version/],
    ['mode: enforce\nversion: STSv1\nmx: a.test\nmax_age: 1', /first field must be version/],
    ['version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1', /unknown version/],
    ['version: STSv1\nmode: enforcing\nmx: a.test\nmax_age: 1', /unknown mode/],
    ['version: STSv1\nmode: enforce\nmx: a.test', /no max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1', /bad max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1e5', /bad max_age/],
    ['version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601', /above/],
    ['version: STSv1\nmode: enforce\nmax_age: 86400', /without any mx/],
    ['version: STSv1\nmode: enforce\nmode: testing\nmx: a.test\nmax_age: 1', /mode given twice/],
    ['version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 1\nmax_age: 2', /max_age given twice/],
    ['version: STSv1\nmode: enforce\nmx: *.*.a.test\nmax_age: 1', /bad mx/],
    ['version: STSv1\nmode: enforce\nmx: a*.test\nmax_age: 1', /bad mx/],
    ['version: STSv1\nmode: enforce\nmx: localhost\nmax_age: 1', /bad mx/],
    ['version: STSv1\nmode: enforce\nmx: \nmax_age: 1', /bad mx/],
    ['version: STSv1\nmode enforce\nmx: a.test\nmax_age: 1', /key: value/],
    ['<html><body>Not found</body></html>', /key: value|bad key/],
  ];
  for (const [text, why] of bad) {
    assert.throws(() => parseStsPolicy(text), (err: Error) => err instanceof StsPolicyError && why.test(err.message), JSON.stringify(text));
  }
});

test('mx patterns: exact names, and "*." standing for exactly one label', () => {
  assert.ok(mxMatches('mx.example.test', 'MX.example.test.'));
  assert.ok(!mxMatches('mx.example.test', 'mx2.example.test'));
  assert.ok(mxMatches('*.example.test', 'mx1.example.test'));
  assert.ok(!mxMatches('*.example.test', 'example.test'), 'the wildcard is one label, not zero');
  assert.ok(!mxMatches('*.example.test', 'a.b.example.test'), 'and not two');
  assert.ok(!mxMatches('*.example.test', 'mx1.example.test.evil.test'));
  assert.ok(!mxMatches('*.example.test', '.example.test'));
  const policy = parseStsPolicy('version: STSv1\nmode: enforce\nmx: mx1.a.test\nmx: *.b.test\nmax_age: 60');
  assert.ok(policyAllows(policy, 'mx1.a.test') && policyAllows(policy, 'x.b.test'));
  assert.ok(!policyAllows(policy, 'mx2.a.test'));
});
