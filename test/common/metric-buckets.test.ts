import assert from 'node:assert/strict';
import { test } from 'node:test';
import { durationBucketsUpTo, statusClass } from '../../common/index.js';

const FINE = [0.001, 0.01, 0.1, 1, 10];

test('duration buckets end at the longest request, with coarse steps past the fine ones', () => {
  assert.deepEqual(durationBucketsUpTo(FINE, 60), [...FINE, 15, 30, 60]);
  assert.deepEqual(durationBucketsUpTo(FINE, 30), [...FINE, 15, 30]);
  // An odd timeout gets its own bound, after the coarse steps below it.
  assert.deepEqual(durationBucketsUpTo(FINE, 45.5), [...FINE, 15, 30, 45.5]);
  // A timeout inside the fine range adds nothing: the fine buckets already reach it.
  assert.deepEqual(durationBucketsUpTo(FINE, 2), FINE);
});

test('status class: 2xx, 4xx, 5xx', () => {
  assert.deepEqual([200, 204, 400, 431, 499, 500, 503, 504].map(statusClass), [
    '2xx',
    '2xx',
    '4xx',
    '4xx',
    '4xx',
    '5xx',
    '5xx',
    '5xx',
  ]);
});
