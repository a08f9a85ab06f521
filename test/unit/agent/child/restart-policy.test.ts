// When a supervised child is started again: exponential backoff, a budget of
// failures in a row, and the budget back after a stable run.
import { describe, expect, it } from '@jest/globals';
import { createRestartPolicy } from '../../../../agent/child/restart-policy.js';

const settings = { maxRestarts: 4, backoffInitialMs: 100, backoffMaxMs: 500, stableAfterMs: 1_000 };

describe('createRestartPolicy', () => {
  it('doubles the delay from backoffInitialMs up to backoffMaxMs, counting attempts', () => {
    const policy = createRestartPolicy(settings);

    const decisions = [policy.next(), policy.next(), policy.next(), policy.next()];

    expect(decisions).toEqual([
      { restart: true, attempt: 1, delayMs: 100 },
      { restart: true, attempt: 2, delayMs: 200 },
      { restart: true, attempt: 3, delayMs: 400 },
      { restart: true, attempt: 4, delayMs: 500 },
    ]);
  });

  it('gives up on the failure after maxRestarts', () => {
    const policy = createRestartPolicy({ ...settings, maxRestarts: 2 });

    policy.next();
    policy.next();

    expect(policy.next()).toEqual({ restart: false });
  });

  it('gives a child that ran stableAfterMs its budget back, and a shorter run not', () => {
    const policy = createRestartPolicy({ ...settings, maxRestarts: 2 });
    policy.next();
    policy.next();

    policy.exited(999);
    expect(policy.next()).toEqual({ restart: false });

    policy.exited(1_000);
    expect(policy.next()).toEqual({ restart: true, attempt: 1, delayMs: 100 });
  });

  it('gives up at once with a budget of zero', () => {
    expect(createRestartPolicy({ ...settings, maxRestarts: 0 }).next()).toEqual({ restart: false });
  });
});
