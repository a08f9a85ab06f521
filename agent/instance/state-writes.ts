// What an instance's lifecycle writes to its row: each change with its
// mcp_events row in one transaction, and only while the row is still this node's.
import { insertEvent } from '../../core/db/events.js';
import { updateInstanceRuntime } from '../../core/db/instances.js';
import { releasePortsOfInstance } from '../../core/db/ports.js';
import type { EventType, InstanceStatus, JsonObject } from '../../core/domain.js';
import type { StopReason } from './instance-runtime.js';
import type { RuntimeContext } from './runtime-context.js';

/** Statuses the agent may end itself; anything else was decided by someone else first. */
const LIVE: readonly InstanceStatus[] = ['pending', 'running'];

export interface RowChange {
  status?: InstanceStatus;
  processId?: number | null;
  errorMessage?: string | null;
}

/** Row change + event in one transaction; false if the row moved away from this node. */
export function writeState(
  ctx: RuntimeContext,
  change: RowChange,
  event: { type: EventType; data?: JsonObject },
  options: { releasePort?: boolean; fromStatuses?: readonly InstanceStatus[] } = {},
): Promise<boolean> {
  const { pool, nodeId } = ctx.deps;
  return pool.transaction(async (tx) => {
    const updated = await updateInstanceRuntime(tx, ctx.id, nodeId, change, options.fromStatuses);
    if (!updated) return false;
    if (options.releasePort) await releasePortsOfInstance(tx, ctx.id);
    await insertEvent(tx, {
      instanceId: ctx.id,
      userId: ctx.spec.user_id,
      type: event.type,
      data: { node_id: nodeId, ...event.data },
    });
    return true;
  });
}

/**
 * What a stop leaves in the row, by its reason: expired (port released), or
 * disconnected by an agent shutdown; a deleted row only loses its pid. A move
 * or supersession writes nothing: the row is someone else's now.
 */
export async function recordStop(
  ctx: RuntimeContext,
  reason: StopReason,
  wasRunning: boolean,
): Promise<void> {
  if (reason === 'expired') {
    await writeState(
      ctx,
      { status: 'expired', processId: null },
      { type: 'expired', data: { port: ctx.port } },
      { releasePort: true, fromStatuses: LIVE },
    );
  } else if (reason === 'shutdown' && wasRunning) {
    await writeState(
      ctx,
      { status: 'disconnected', processId: null },
      { type: 'disconnected', data: { reason: 'agent shutdown' } },
      { releasePort: true, fromStatuses: LIVE },
    );
  } else if (reason === 'deleted') {
    await updateInstanceRuntime(ctx.deps.pool, ctx.id, ctx.deps.nodeId, { processId: null });
  }
}

/** The row goes to `error` with the message, and the port is released. */
export async function recordFailure(
  ctx: RuntimeContext,
  code: string,
  message: string,
): Promise<void> {
  await writeState(
    ctx,
    { status: 'error', processId: null, errorMessage: message },
    { type: 'error', data: { code, message } },
    { releasePort: true },
  );
}
