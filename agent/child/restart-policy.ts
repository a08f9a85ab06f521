// When the supervisor starts a child again after an unexpected exit: exponential
// backoff, a budget of failures in a row, and the budget back for a child that
// ran long enough to count as stable. It owns the failure count, not the timer.

export interface RestartPolicySettings {
  /** Restarts after unexpected exits before the terminal `failed`. */
  maxRestarts: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** A child that ran this long gets its restart budget back. */
  stableAfterMs: number;
}

export type RestartDecision =
  { restart: true; attempt: number; delayMs: number } | { restart: false };

export interface RestartPolicy {
  /** A ready child exited unexpectedly after `uptimeMs`. */
  exited(uptimeMs: number): void;
  /** Counts one more failure in a row: restart after `delayMs`, or give up. */
  next(): RestartDecision;
}

export function createRestartPolicy(settings: RestartPolicySettings): RestartPolicy {
  let failuresInARow = 0;
  return {
    exited(uptimeMs) {
      if (uptimeMs >= settings.stableAfterMs) failuresInARow = 0;
    },
    next() {
      failuresInARow += 1;
      if (failuresInARow > settings.maxRestarts) return { restart: false };
      const delayMs = Math.min(
        settings.backoffInitialMs * 2 ** (failuresInARow - 1),
        settings.backoffMaxMs,
      );
      return { restart: true, attempt: failuresInARow, delayMs };
    },
  };
}
