// Draining a node: no new instances are placed there (placement skips
// non-active nodes); its instances keep serving until they expire, or, when
// the admin asks, move to other nodes (same id and token, a new node and
// port; the drained node's agent stops its copy when it sees the row moved).
import type { DatabasePool } from 'slonik';
import type { AgentResolver } from './agent-registry.js';
import { insertEvent } from '../../core/db/events.js';
import { reassignInstance } from './db/instance-changes.js';
import { lockLiveInstancesOnNode } from './db/instance-sweeps.js';
import { getNode, setNodeStatus, type NodeRow } from '../../core/db/nodes.js';
import { placeInstance } from './db/placement.js';
import { releasePortsOfInstance } from '../../core/db/ports.js';
import { asSystem } from './db/user-context.js';
import type { Logger } from '../../core/logger.js';

export interface DrainResult {
  node: NodeRow;
  moved: Array<{ instanceId: string; toNode: string; port: number }>;
  /** Instances that stay (no other node had room), with the reason. */
  notMoved: Array<{ instanceId: string; reason: string }>;
}

export async function drainNode(options: {
  pool: DatabasePool;
  agents: AgentResolver;
  nodeId: string;
  move: boolean;
  heartbeatFreshSeconds: number;
  startWaitMs: number;
  /** Told about moved instances whose agent did not take the start. */
  logger: Logger;
}): Promise<DrainResult> {
  const { pool, nodeId } = options;
  const moved: DrainResult['moved'] = [];
  const notMoved: DrainResult['notMoved'] = [];
  const targets = new Map<string, { id: string; grpc_address: string }>();

  const node = await asSystem(pool, async (tx) => {
    await getNode(tx, nodeId);
    await setNodeStatus(tx, nodeId, 'draining');
    return getNode(tx, nodeId);
  });
  if (!options.move) return { node, moved, notMoved };

  const live = await asSystem(pool, (tx) => lockLiveInstancesOnNode(tx, nodeId));
  for (const instance of live) {
    try {
      // One transaction per instance: a failure leaves the others moved.
      const placement = await asSystem(pool, async (tx) => {
        await releasePortsOfInstance(tx, instance.id);
        const target = await placeInstance(tx, instance.id, {
          heartbeatFreshSeconds: options.heartbeatFreshSeconds,
          excludeNodeId: nodeId,
        });
        await reassignInstance(tx, instance.id, {
          nodeId: target.node.id,
          port: target.port,
          accessUrl: `http://${target.node.public_host}:${target.port}/mcp`,
          expiresAt: instance.expires_at,
          apiKeyId: instance.api_key_id,
        });
        await insertEvent(tx, {
          instanceId: instance.id,
          userId: instance.user_id,
          type: 'moved',
          data: {
            from_node_id: nodeId,
            to_node_id: target.node.id,
            to_node: target.node.name,
            port: target.port,
          },
        });
        return target;
      });
      targets.set(instance.id, placement.node);
      moved.push({ instanceId: instance.id, toNode: placement.node.name, port: placement.port });
    } catch (error) {
      notMoved.push({
        instanceId: instance.id,
        reason: error instanceof Error ? error.message : String(error),
      });
    }
  }
  // Start the moved instances now rather than at the next reconcile pass.
  await Promise.all(
    [...targets].map(([instanceId, target]) =>
      // Through a promise: a resolver that throws must not fail the drain.
      Promise.resolve()
        .then(() =>
          options
            .agents(target)
            .startInstance(
              { instanceId, reason: 'START_REASON_MOVED', readyTimeoutMs: options.startWaitMs },
              { deadlineMs: options.startWaitMs + 2000 },
            ),
        )
        .catch((error: unknown) =>
          options.logger.warn(
            { err: String(error), instanceId },
            'moved instance not started yet; its agent will reconcile it',
          ),
        ),
    ),
  );
  return { node: await asSystem(pool, (tx) => getNode(tx, nodeId)), moved, notMoved };
}

/** Lets a drained (or down) node take new instances again. */
export async function activateNode(pool: DatabasePool, nodeId: string): Promise<NodeRow> {
  return asSystem(pool, async (tx) => {
    await getNode(tx, nodeId);
    await setNodeStatus(tx, nodeId, 'active');
    return getNode(tx, nodeId);
  });
}
