/**
 * The admin API's filter (filterOf in lib/api/admin-routes.ts): a request's fields become a
 * RowFilter under their own names, ages from seconds to ms, the domain in lower case; fields not
 * given are absent (an empty filter is how a bulk action knows to ask for "all"); a row without
 * its message, or a malformed id, is refused with 400.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterOf } from '../../lib/api/admin-routes.js';
import { HttpError } from '../../lib/api/errors.js';

const ID = '0123456789abcdef012345';

test('fields keep their names; ages become ms and the domain lower case', () => {
  assert.deepEqual(filterOf({ id: ID, seq: 2, zone: 'z', domain: 'Example.TEST', sender: '<>', status: 'held', minAge: 60, maxAge: 3600, category: 'greylist' }), {
    id: ID,
    seq: 2,
    zone: 'z',
    domain: 'example.test',
    sender: '<>',
    status: 'held',
    minAgeMs: 60_000,
    maxAgeMs: 3_600_000,
    category: 'greylist',
  });
});

test('fields not given are absent, not undefined', () => {
  assert.deepEqual(Object.keys(filterOf({ zone: undefined, seq: undefined, minAge: undefined })), []);
  assert.deepEqual(filterOf({ minAge: 0 }), { minAgeMs: 0 });
});

test('a malformed id, or a row without its message, is a 400', () => {
  for (const fields of [{ id: 'nope' }, { seq: 1 }]) {
    assert.throws(
      () => filterOf(fields),
      (err) => err instanceof HttpError && err.statusCode === 400,
    );
  }
});
