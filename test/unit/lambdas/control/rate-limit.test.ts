// Token buckets for POST /v1/auth/token, on a clock the test drives.
import { describe, expect, it } from '@jest/globals';
import { createRateLimiter } from '../../../../lambdas/control/rate-limit.js';

function clock() {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('the auth rate limiter', () => {
  it('allows a burst, then refuses with the seconds until the next attempt', () => {
    const time = clock();
    const limiter = createRateLimiter({ burst: 3, refillSeconds: 10, now: time.now });
    expect([1, 2, 3].map(() => limiter.take('a@example.test|1.2.3.4').ok)).toEqual([
      true,
      true,
      true,
    ]);
    expect(limiter.take('a@example.test|1.2.3.4')).toEqual({ ok: false, retryAfterSeconds: 10 });
    time.advance(4_000);
    expect(limiter.take('a@example.test|1.2.3.4')).toEqual({ ok: false, retryAfterSeconds: 6 });
  });

  it('earns attempts back over time, never above the burst', () => {
    const time = clock();
    const limiter = createRateLimiter({ burst: 2, refillSeconds: 5, now: time.now });
    limiter.take('k');
    limiter.take('k');
    time.advance(5_000);
    expect(limiter.take('k').ok).toBe(true);
    expect(limiter.take('k').ok).toBe(false);
    time.advance(3_600_000);
    expect(limiter.take('k')).toEqual({ ok: true, remaining: 1 });
    expect(limiter.take('k')).toEqual({ ok: true, remaining: 0 });
    expect(limiter.take('k').ok).toBe(false);
  });

  it('keeps one bucket per key', () => {
    const limiter = createRateLimiter({ burst: 1, refillSeconds: 60, now: clock().now });
    expect(limiter.take('a|ip1').ok).toBe(true);
    expect(limiter.take('a|ip1').ok).toBe(false);
    expect(limiter.take('a|ip2').ok).toBe(true);
    expect(limiter.take('b|ip1').ok).toBe(true);
  });

  it('forgets the least recently used keys beyond maxKeys (bounded memory)', () => {
    const limiter = createRateLimiter({
      burst: 1,
      refillSeconds: 60,
      maxKeys: 2,
      now: clock().now,
    });
    limiter.take('first');
    limiter.take('second');
    limiter.take('third');
    // 'first' was evicted, so it starts with a full bucket again.
    expect(limiter.take('first').ok).toBe(true);
    expect(limiter.take('third').ok).toBe(false);
  });
});
