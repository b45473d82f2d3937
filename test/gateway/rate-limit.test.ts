import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { parsePolicy } from '../../gateway/policy.js';
import { TenantRateLimiter } from '../../gateway/rate-limit.js';

const T0 = 1_000_000; // any monotonic origin, in ms

function takeMany(limiter: TenantRateLimiter, tenant: string, count: number, nowMs: number): number {
  let allowed = 0;
  for (let i = 0; i < count; i++) if (limiter.take(tenant, nowMs).allowed) allowed++;
  return allowed;
}

test('a full bucket allows the burst at once, then refuses with the seconds until one token', () => {
  const limiter = new TenantRateLimiter(new Map([['clinic-a', { requestsPerSecond: 2, burst: 5 }]]));
  assert.equal(takeMany(limiter, 'clinic-a', 5, T0), 5);
  // One token takes 0.5 s at 2/s: rounded up to whole seconds, at least 1.
  assert.deepEqual(limiter.take('clinic-a', T0), { allowed: false, retryAfterSeconds: 1 });
});

test('retryAfterSeconds rounds up the time to one token', () => {
  const limiter = new TenantRateLimiter(new Map([['slow', { requestsPerSecond: 0.25, burst: 1 }]]));
  assert.deepEqual(limiter.take('slow', T0), { allowed: true });
  assert.deepEqual(limiter.take('slow', T0), { allowed: false, retryAfterSeconds: 4 });
  assert.deepEqual(limiter.take('slow', T0 + 1_500), { allowed: false, retryAfterSeconds: 3 });
  assert.deepEqual(limiter.take('slow', T0 + 3_999), { allowed: false, retryAfterSeconds: 1 });
  assert.deepEqual(limiter.take('slow', T0 + 4_000), { allowed: true });
});

test('the bucket refills over time at requestsPerSecond, never beyond burst', () => {
  const limiter = new TenantRateLimiter(new Map([['shop', { requestsPerSecond: 10, burst: 20 }]]));
  assert.equal(takeMany(limiter, 'shop', 25, T0), 20);
  assert.equal(takeMany(limiter, 'shop', 5, T0 + 300), 3); // 0.3 s at 10/s
  // Ten idle seconds refill 100 tokens' worth, but the bucket holds only 20.
  assert.equal(takeMany(limiter, 'shop', 30, T0 + 10_300), 20);
  // Many small steps add up exactly: 10 x 10 ms at 10/s is one token.
  for (let step = 1; step < 10; step++) assert.equal(limiter.take('shop', T0 + 10_300 + step * 10).allowed, false);
  assert.equal(limiter.take('shop', T0 + 10_400).allowed, true);
});

test('a clock that steps back refills nothing', () => {
  const limiter = new TenantRateLimiter(new Map([['shop', { requestsPerSecond: 1, burst: 1 }]]));
  assert.equal(limiter.take('shop', T0).allowed, true);
  assert.equal(limiter.take('shop', T0 - 60_000).allowed, false);
  assert.equal(limiter.take('shop', T0 + 1_000).allowed, true);
});

test('each tenant has its own bucket', () => {
  const limiter = new TenantRateLimiter(
    new Map([
      ['a', { requestsPerSecond: 1, burst: 2 }],
      ['b', { requestsPerSecond: 1, burst: 3 }],
    ]),
  );
  assert.equal(takeMany(limiter, 'a', 5, T0), 2);
  assert.equal(takeMany(limiter, 'b', 5, T0), 3);
  assert.equal(limiter.take('a', T0).allowed, false);
});

test('tenants without a limit are always allowed', () => {
  const limiter = new TenantRateLimiter(new Map([['a', { requestsPerSecond: 1, burst: 1 }]]));
  assert.equal(takeMany(limiter, 'unlimited', 10_000, T0), 10_000);
});

test('limits can come straight from a policy', () => {
  const hash = (key: string) => createHash('sha256').update(key).digest('hex');
  const policy = parsePolicy(
    JSON.stringify({
      tenants: [
        {
          name: 'limited',
          privacy: 'public-allowed',
          apiKeySha256: [hash('a')],
          rateLimit: { requestsPerSecond: 1, burst: 2 },
        },
        { name: 'free', privacy: 'secure-only', apiKeySha256: [hash('b')] },
      ],
    }),
    'policy.json',
  );
  const limiter = new TenantRateLimiter(policy);
  assert.equal(takeMany(limiter, 'limited', 5, T0), 2);
  assert.equal(takeMany(limiter, 'free', 100, T0), 100);
});

test('limits that could never admit a request are refused', () => {
  for (const limit of [
    { requestsPerSecond: 0, burst: 1 },
    { requestsPerSecond: 1, burst: 0.5 },
    { requestsPerSecond: Infinity, burst: 1 },
  ]) {
    assert.throws(
      () => new TenantRateLimiter(new Map([['x', limit]])),
      /rate limit of tenant "x" needs requestsPerSecond > 0 and burst >= 1/,
    );
  }
});
