// The per-address token buckets of GET /attestation: burst, refill, independence of addresses,
// and memory bounded by its cap. Time is passed in: no sleeps.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AddressRateLimiter } from '../../gateway/address-rate-limit.js';

test('each address gets its burst, then one request per 1/rate seconds, independently of the others', () => {
  const limiter = new AddressRateLimiter({ requestsPerSecond: 2, burst: 3 });
  for (let n = 0; n < 3; n++) assert.deepEqual(limiter.take('10.0.0.1', 0), { allowed: true });
  assert.deepEqual(limiter.take('10.0.0.1', 0), { allowed: false, retryAfterSeconds: 1 });
  assert.deepEqual(limiter.take('10.0.0.2', 0), { allowed: true }, 'another address has its own bucket');
  assert.deepEqual(limiter.take('10.0.0.1', 499), { allowed: false, retryAfterSeconds: 1 });
  assert.deepEqual(limiter.take('10.0.0.1', 500), { allowed: true }, 'half a second refills one token at 2/s');
  assert.deepEqual(
    limiter.take('10.0.0.1', 100),
    { allowed: false, retryAfterSeconds: 1 },
    'a clock stepping back refills nothing',
  );
});

test('a slow rate says how long to wait', () => {
  const limiter = new AddressRateLimiter({ requestsPerSecond: 0.1, burst: 1 });
  assert.equal(limiter.take('a', 0).allowed, true);
  assert.deepEqual(limiter.take('a', 0), { allowed: false, retryAfterSeconds: 10 });
});

test('memory is bounded: past the cap, refilled buckets go first, then the oldest', () => {
  const limiter = new AddressRateLimiter({ requestsPerSecond: 1, burst: 2, maxAddresses: 100 });
  for (let n = 0; n < 1_000; n++) limiter.take(`addr-${n}`, 0);
  assert.ok(limiter.size <= 100, `kept ${limiter.size} buckets`);
  limiter.take('busy', 5_000);
  limiter.take('busy', 5_000);
  // Everything else has refilled by now and is dropped by the sweep.
  limiter.take('late', 5_000);
  assert.ok(limiter.size <= 3, `kept ${limiter.size} buckets after the sweep`);
  assert.deepEqual(
    limiter.take('busy', 5_000),
    { allowed: false, retryAfterSeconds: 1 },
    'a busy bucket survived the sweep',
  );
});

test('nonsensical limits are refused', () => {
  assert.throws(() => new AddressRateLimiter({ requestsPerSecond: 0, burst: 1 }), RangeError);
  assert.throws(() => new AddressRateLimiter({ requestsPerSecond: 1, burst: 0.5 }), RangeError);
});
