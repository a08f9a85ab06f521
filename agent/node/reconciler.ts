// Converges this node to the database, like a kubelet: on start and every few
// seconds, the instances assigned here that should run are started, runtimes
// that should not run are stopped, and rows that are wrong are fixed. gRPC
// commands only make it act on one instance now (ensure / release).
import type { DatabasePool } from 'slonik';
import type { InstanceStopReason, StartFailure } from '../../core/agent-contract.js';
import {
  findRuntimeSpec,
  listDesiredInstancesForNode,
  type RuntimeSpecRow,
} from '../../core/db/instances.js';
import type { Logger } from '../../core/logger.js';
import { mapLimit } from './map-limit.js';
import {
  createInstanceRuntime,
  type InstanceRuntime,
  type RuntimeDeps,
} from '../instance/instance-runtime.js';

/**
 * What `ensure` did: a runtime that runs (or failed to start, with why), or a
 * refusal to start one: no such row, a row this node should not run (deleted,
 * assigned elsewhere, expired, not pending or running), or the agent is closing.
 */
export type EnsureOutcome =
  | { runtime: InstanceRuntime; failure?: StartFailure }
  | { refused: 'NOT_FOUND' | 'NOT_RUNNABLE' | 'SHUTTING_DOWN'; message: string };

export interface Reconciler {
  /** One full pass now (also run by the loop). */
  reconcile(): Promise<void>;
  /** Starts (or finds) the instance and waits until it runs or fails. */
  ensure(instanceId: string): Promise<EnsureOutcome>;
  /**
   * Stops the instance's runtime if this node runs it and its row no longer
   * wants it here; the row decides the reason, answered (undefined: not stopped).
   */
  release(instanceId: string): Promise<InstanceStopReason | undefined>;
  get(instanceId: string): InstanceRuntime | undefined;
  list(): InstanceRuntime[];
  /** Stops the loop and every runtime (reason `shutdown`: rows become disconnected). */
  close(): Promise<void>;
}

function shouldRun(spec: RuntimeSpecRow, nodeId: string): boolean {
  return (
    spec.node_id === nodeId &&
    !spec.deleted_at &&
    (spec.status === 'pending' || spec.status === 'running') &&
    spec.expires_at.getTime() > Date.now() &&
    spec.assigned_port !== null
  );
}

/** Why a runtime that is no longer desired stops, judged from its current row. */
function stopReasonFor(row: RuntimeSpecRow | null, nodeId: string): InstanceStopReason {
  if (!row || row.deleted_at) return 'deleted';
  if (row.node_id !== nodeId) return 'moved';
  if (row.expires_at.getTime() <= Date.now()) return 'expired';
  return 'superseded';
}

/** Times each reconcile pass (agent/node/metrics.ts); `ok` false: the pass failed and the next retries. */
export interface ReconcilerMetrics {
  pass(seconds: number, ok: boolean): void;
}

export function createReconciler(options: {
  deps: RuntimeDeps;
  pool: DatabasePool;
  nodeId: string;
  intervalMs: number;
  /** Starts at once; the rest wait (a node restart brings back many instances). */
  startConcurrency?: number;
  /** Called after each pass that read the desired state and acted on all of it. */
  onPassDone?: () => void;
  metrics?: ReconcilerMetrics;
  logger: Logger;
}): Reconciler {
  const runtimes = new Map<string, InstanceRuntime>();
  const log = options.logger;
  let closed = false;
  let passing: Promise<void> | undefined;

  const launch = (spec: RuntimeSpecRow): InstanceRuntime => {
    const existing = runtimes.get(spec.id);
    if (existing && existing.state !== 'stopped' && existing.state !== 'failed') return existing;
    const runtime = createInstanceRuntime(spec, options.deps);
    runtimes.set(spec.id, runtime);
    void runtime.ready.then(() => {
      // A failed runtime leaves the map once its row says error, so a restore can start it again.
      if (runtime.state === 'failed' && runtimes.get(spec.id) === runtime) runtimes.delete(spec.id);
    });
    return runtime;
  };

  const stopRuntime = async (runtime: InstanceRuntime, reason: InstanceStopReason) => {
    await runtime.stop(reason);
    if (runtimes.get(runtime.id) === runtime) runtimes.delete(runtime.id);
  };

  const pass = async () => {
    const desired = await listDesiredInstancesForNode(options.pool, options.nodeId);
    const desiredIds = new Set(desired.map((d) => d.id));
    const toStart: RuntimeSpecRow[] = [];
    for (const spec of desired) {
      const runtime = runtimes.get(spec.id);
      if (!runtime || runtime.state === 'stopped') toStart.push(spec);
      else runtime.refresh(spec);
    }
    await mapLimit(toStart, options.startConcurrency ?? 8, async (spec) => {
      if (!closed) await launch(spec).ready;
    });
    if (closed) return;
    for (const runtime of [...runtimes.values()]) {
      if (desiredIds.has(runtime.id) || runtime.state === 'stopping') continue;
      if (runtime.state === 'failed') {
        runtimes.delete(runtime.id);
        continue;
      }
      const row = await findRuntimeSpec(options.pool, runtime.id);
      if (row && shouldRun(row, options.nodeId)) continue; // changed between the two reads
      await stopRuntime(runtime, stopReasonFor(row, options.nodeId));
    }
    options.onPassDone?.();
  };

  const reconcile = (): Promise<void> => {
    const started = performance.now();
    const timed = (ok: boolean) => options.metrics?.pass((performance.now() - started) / 1000, ok);
    passing ??= pass()
      .then(
        () => timed(true),
        (error: unknown) => {
          timed(false);
          log.warn({ err: String(error) }, 'reconcile pass failed; next pass retries');
        },
      )
      .finally(() => {
        passing = undefined;
      });
    return passing;
  };

  const timer = setInterval(() => {
    if (!closed) void reconcile();
  }, options.intervalMs);
  timer.unref();

  return {
    reconcile,
    async ensure(instanceId) {
      const existing = runtimes.get(instanceId);
      if (existing && (existing.state === 'running' || existing.state === 'starting')) {
        // A start request for a live instance is also how the API says its row
        // changed (token rotated, extended): apply the row now, not at the next pass.
        const current = await findRuntimeSpec(options.pool, instanceId);
        if (current && shouldRun(current, options.nodeId)) existing.refresh(current);
        const failure = await existing.ready;
        return failure ? { runtime: existing, failure } : { runtime: existing };
      }
      const spec = await findRuntimeSpec(options.pool, instanceId);
      if (!spec) return { refused: 'NOT_FOUND', message: `instance ${instanceId} not found` };
      if (!shouldRun(spec, options.nodeId)) {
        return {
          refused: 'NOT_RUNNABLE',
          message: `instance ${instanceId} is not meant to run on this node (status ${spec.status}${spec.deleted_at ? ', deleted' : ''}${spec.node_id !== options.nodeId ? ', assigned elsewhere' : ''})`,
        };
      }
      if (closed) return { refused: 'SHUTTING_DOWN', message: 'the agent is shutting down' };
      const runtime = launch(spec);
      const failure = await runtime.ready;
      return failure ? { runtime, failure } : { runtime };
    },
    async release(instanceId) {
      const runtime = runtimes.get(instanceId);
      if (!runtime) return undefined;
      const row = await findRuntimeSpec(options.pool, instanceId);
      if (row && shouldRun(row, options.nodeId)) return undefined; // still wanted here
      const reason = stopReasonFor(row, options.nodeId);
      await stopRuntime(runtime, reason);
      return reason;
    },
    get: (instanceId) => runtimes.get(instanceId),
    list: () => [...runtimes.values()],
    async close() {
      closed = true;
      clearInterval(timer);
      await passing;
      await Promise.all([...runtimes.values()].map((runtime) => stopRuntime(runtime, 'shutdown')));
    },
  };
}
