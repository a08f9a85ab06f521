// In-memory token buckets, one per key (e.g. email + client ip). State lives in
// one process: on Lambda each container counts on its own, so the effective
// limit is per container (API Gateway throttling bounds the total).

export interface RateLimitOptions {
  /** Attempts allowed in a burst (the bucket's size). */
  burst: number;
  /** Seconds to earn back one attempt. */
  refillSeconds: number;
  /** Buckets kept at most; the least recently touched are dropped beyond it. */
  maxKeys?: number;
  /** Clock in milliseconds (tests pass their own). */
  now?: () => number;
}

export type RateLimitDecision =
  { ok: true; remaining: number } | { ok: false; retryAfterSeconds: number };

export interface RateLimiter {
  /** Takes one attempt from the key's bucket, or says how long to wait. */
  take(key: string): RateLimitDecision;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export function createRateLimiter(options: RateLimitOptions): RateLimiter {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 10_000;
  const refillMs = options.refillSeconds * 1000;
  // A Map iterates in insertion order: re-inserting on each touch keeps the
  // least recently used key first, so eviction is O(1).
  const buckets = new Map<string, Bucket>();

  return {
    take(key) {
      const at = now();
      const previous = buckets.get(key);
      const bucket: Bucket = previous
        ? {
            tokens: Math.min(
              options.burst,
              previous.tokens + Math.max(0, at - previous.updatedAt) / refillMs,
            ),
            updatedAt: at,
          }
        : { tokens: options.burst, updatedAt: at };
      buckets.delete(key);
      if (bucket.tokens < 1) {
        buckets.set(key, bucket);
        return {
          ok: false,
          retryAfterSeconds: Math.max(1, Math.ceil(((1 - bucket.tokens) * refillMs) / 1000)),
        };
      }
      bucket.tokens -= 1;
      buckets.set(key, bucket);
      while (buckets.size > maxKeys) {
        const oldest = buckets.keys().next().value;
        if (oldest === undefined) break;
        buckets.delete(oldest);
      }
      return { ok: true, remaining: Math.floor(bucket.tokens) };
    },
  };
}
