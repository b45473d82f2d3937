// Token buckets per client address, for routes whose every call costs the enclave work (each
// GET /attestation makes its NSM sign a document). Time is passed in, as in rate-limit.ts, so the
// limiter holds no timers and tests need no sleeps. Addresses are not known in advance, so memory
// is bounded by a cap: a bucket that has refilled is the same as none and goes first; past the
// cap, the oldest bucket is dropped (which can only give that address its burst back).
import type { RateDecision } from './rate-limit.js';

export interface AddressRateLimit {
  requestsPerSecond: number;
  burst: number;
  /** Buckets kept at most; default 10,000 (about 1 MB). */
  maxAddresses?: number;
}

interface Bucket {
  tokens: number;
  updatedMs: number;
}

const DEFAULT_MAX_ADDRESSES = 10_000;
const EPSILON = 1e-9;

export class AddressRateLimiter {
  readonly #limit: Required<AddressRateLimit>;
  readonly #buckets = new Map<string, Bucket>();
  #sweptAtMs = Number.NEGATIVE_INFINITY;

  constructor(limit: AddressRateLimit) {
    if (
      !(limit.requestsPerSecond > 0) ||
      !Number.isFinite(limit.requestsPerSecond) ||
      !(limit.burst >= 1) ||
      !Number.isFinite(limit.burst)
    ) {
      throw new RangeError('an address rate limit needs requestsPerSecond > 0 and burst >= 1, both finite');
    }
    this.#limit = { maxAddresses: DEFAULT_MAX_ADDRESSES, ...limit };
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Takes one token from `address`'s bucket at time `nowMs` (any monotonic clock, in ms). */
  take(address: string, nowMs: number): RateDecision {
    const { requestsPerSecond, burst } = this.#limit;
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      this.#makeRoom(nowMs);
      bucket = { tokens: burst, updatedMs: nowMs };
      this.#buckets.set(address, bucket);
    } else if (nowMs > bucket.updatedMs) {
      bucket.tokens = Math.min(burst, bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * requestsPerSecond);
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens >= 1 - EPSILON) {
      bucket.tokens = Math.max(0, bucket.tokens - 1);
      return { allowed: true };
    }
    return {
      allowed: false,
      retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / requestsPerSecond - EPSILON)),
    };
  }

  #makeRoom(nowMs: number): void {
    if (this.#buckets.size < this.#limit.maxAddresses) return;
    const { requestsPerSecond, burst } = this.#limit;
    // A sweep costs one pass over every bucket: at most once a second, so a flood of new
    // addresses cannot make each request pay for it.
    if (nowMs - this.#sweptAtMs >= 1000) {
      this.#sweptAtMs = nowMs;
      for (const [address, bucket] of this.#buckets) {
        if (bucket.tokens + ((nowMs - bucket.updatedMs) / 1000) * requestsPerSecond >= burst)
          this.#buckets.delete(address);
      }
    }
    // Still full: every address is busy. Drop the oldest (Map keeps insertion order).
    if (this.#buckets.size >= this.#limit.maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
