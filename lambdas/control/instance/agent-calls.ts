// The instance service's calls to a node's agent after a change is committed:
// a start it waits for (bounded) and best-effort notices. A call that fails
// changes nothing for the caller: the agent's reconcile loop converges anyway.
import type { InstanceState, StartReason, StopReason } from '../../../core/agent-contract.js';
import { findInstanceDetail, type InstanceDetailRow } from '../db/instance-details.js';
import { asUser } from '../db/user-context.js';
import type { InstanceServiceDeps, RequestMeta } from './deps.js';
import { toView, type InstanceView } from './views.js';

/** Time allowed on top of a wait for the agent's answer to travel back. */
const ANSWER_MARGIN_MS = 1_000;

/**
 * What the agent said after create or restore. `running`: ready (answer 201).
 * `pending`: slow, unreachable or timed out; the agent's reconcile loop
 * finishes the start (answer 202). `error`: the agent tried and failed; the
 * instance is left in `error` with the reason (answer with InstanceStartError,
 * 502; restoring it tries again).
 */
export type StartOutcome =
  | { status: 'running' | 'pending'; instance: InstanceView }
  | { status: 'error'; instance: InstanceView; error: { code: string; message: string } };

/** The row as it is now (the agent may have changed it), or `fallback` if it went away. */
async function reread(
  deps: InstanceServiceDeps,
  userId: string,
  fallback: InstanceDetailRow,
): Promise<InstanceView> {
  try {
    const row = await asUser(deps.pool, userId, (tx) => findInstanceDetail(tx, fallback.id));
    return toView(row ?? fallback);
  } catch (error) {
    // The change is committed: failing now would lose the token shown only
    // in this answer, so the committed view is answered instead.
    deps.logger.warn(
      { err: String(error), instanceId: fallback.id },
      'could not re-read the instance',
    );
    return toView(fallback);
  }
}

/** Asks the node's agent to start the instance and waits (bounded) for what it observes. */
export async function startOnAgent(
  deps: InstanceServiceDeps,
  userId: string,
  row: InstanceDetailRow,
  reason: StartReason,
  meta: RequestMeta | undefined,
): Promise<StartOutcome> {
  if (row.node_id === null || row.node_grpc_address === null)
    return { status: 'pending', instance: toView(row) };
  let state: InstanceState;
  try {
    const answer = await deps
      .agents({ id: row.node_id, grpc_address: row.node_grpc_address })
      .startInstance(
        {
          instanceId: row.id,
          requestId: meta?.requestId ?? '',
          reason,
          readyTimeoutMs: deps.startWaitMs,
        },
        { deadlineMs: deps.startWaitMs + ANSWER_MARGIN_MS },
      );
    state = answer.instance;
  } catch (error) {
    // Slow, unreachable or refusing: the row is committed, and the agent's
    // reconcile loop starts it when it can. The caller answers 202.
    deps.logger.warn(
      { err: String(error), instanceId: row.id, nodeId: row.node_id, reason },
      'agent did not confirm the start; leaving it to the reconcile loop',
    );
    return { status: 'pending', instance: await reread(deps, userId, row) };
  }
  const instance = await reread(deps, userId, row);
  if (state.status === 'error' || state.error !== null)
    return {
      status: 'error',
      instance,
      error: state.error ?? {
        code: 'INTERNAL',
        message: 'the agent could not start the instance',
      },
    };
  if (state.status === 'running' && state.ready) return { status: 'running', instance };
  return { status: 'pending', instance };
}

/** A call whose failure changes nothing for the caller: the reconcile loop converges anyway. */
export async function notifyAgent(
  deps: InstanceServiceDeps,
  row: InstanceDetailRow,
  call: { start: StartReason } | { stop: StopReason },
  meta: RequestMeta | undefined,
): Promise<void> {
  if (row.node_id === null || row.node_grpc_address === null) return;
  const client = deps.agents({ id: row.node_id, grpc_address: row.node_grpc_address });
  const requestId = meta?.requestId ?? '';
  const deadlineMs = deps.notifyWaitMs + ANSWER_MARGIN_MS;
  try {
    if ('start' in call)
      await client.startInstance(
        { instanceId: row.id, requestId, reason: call.start, readyTimeoutMs: deps.notifyWaitMs },
        { deadlineMs },
      );
    else
      await client.stopInstance(
        { instanceId: row.id, requestId, reason: call.stop },
        { deadlineMs },
      );
  } catch (error) {
    // Best effort by design; logged so an unreachable agent shows up.
    deps.logger.warn(
      { err: String(error), instanceId: row.id, nodeId: row.node_id, call },
      'agent call failed; the reconcile loop will converge',
    );
  }
}
