// Per-tenant token buckets. Time is passed in rather than read, so the limiter holds no timers and
// tests need no sleeps; buckets exist only for tenants the policy limits, so memory is bounded by
// the policy, not by traffic.
import type { PrivacyPolicy, TenantRateLimit } from './policy.js';

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

interface Bucket {
  tokens: number;
  updatedMs: number;
}

const ALLOWED: RateDecision = Object.freeze({ allowed: true });
// Refills are sums of fractions; without slack, 0.1 * 10 could fall a hair short of one token.
const EPSILON = 1e-9;

export class TenantRateLimiter {
  readonly #limits: ReadonlyMap<string, TenantRateLimit>;
  readonly #buckets = new Map<string, Bucket>();

  constructor(limits: ReadonlyMap<string, TenantRateLimit> | PrivacyPolicy) {
    if ('tenants' in limits) {
      this.#limits = new Map(
        limits.tenants.flatMap((tenant) => (tenant.rateLimit ? [[tenant.name, tenant.rateLimit] as const] : [])),
      );
      return;
    }
    for (const [tenant, limit] of limits) {
      const valid =
        Number.isFinite(limit.requestsPerSecond) &&
        limit.requestsPerSecond > 0 &&
        Number.isFinite(limit.burst) &&
        limit.burst >= 1;
      if (!valid)
        throw new RangeError(
          `rate limit of tenant "${tenant}" needs requestsPerSecond > 0 and burst >= 1, both finite`,
        );
    }
    this.#limits = new Map(limits); // a copy, so later edits to the caller's map cannot bypass the check above
  }

  /** Takes one token from the tenant's bucket at time `nowMs` (any monotonic clock, in ms). */
  take(tenant: string, nowMs: number): RateDecision {
    const limit = this.#limits.get(tenant);
    if (limit === undefined) return ALLOWED;
    let bucket = this.#buckets.get(tenant);
    if (bucket === undefined) {
      bucket = { tokens: limit.burst, updatedMs: nowMs };
      this.#buckets.set(tenant, bucket);
    } else if (nowMs > bucket.updatedMs) {
      // A clock that steps back refills nothing, rather than draining or overfilling the bucket.
      bucket.tokens = Math.min(
        limit.burst,
        bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * limit.requestsPerSecond,
      );
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens >= 1 - EPSILON) {
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      return ALLOWED;
    }
    const secondsToOneToken = (1 - bucket.tokens) / limit.requestsPerSecond;
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(secondsToOneToken - EPSILON)) };
  }
}
