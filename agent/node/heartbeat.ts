// Keeps the node's row fresh: last_heartbeat and node-level stats every few
// seconds. Placement skips nodes whose heartbeat is stale.
import type { DatabasePool } from 'slonik';
import { recordHeartbeat } from '../../core/db/nodes.js';
import type { JsonObject } from '../../core/domain.js';

export interface Heartbeat {
  /** Sends one now (also used right after registration). */
  beat(): Promise<void>;
  stop(): void;
}

export function startHeartbeat(options: {
  pool: DatabasePool;
  nodeId: string;
  intervalMs: number;
  stats: () => JsonObject;
  onError?: (error: unknown) => void;
}): Heartbeat {
  let stopped = false;
  const beat = async () => {
    if (stopped) return;
    try {
      await recordHeartbeat(options.pool, options.nodeId, options.stats());
    } catch (error) {
      options.onError?.(error);
    }
  };
  const timer = setInterval(() => void beat(), options.intervalMs);
  timer.unref();
  return {
    beat,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
