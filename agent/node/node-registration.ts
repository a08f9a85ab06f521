// This node in the database: its row and port pool registered together, and
// the log partitions its lines will go to.
import { sql, type DatabasePool } from 'slonik';
import type { AgentConfig } from '../../core/config.js';
import { registerNode, type NodeRow } from '../../core/db/nodes.js';

/** One transaction: placement never sees the node without its port pool. */
export function registerThisNode(
  pool: DatabasePool,
  config: AgentConfig,
  nodeName: string,
  agentVersion: string,
): Promise<NodeRow> {
  const range = config.MINIMCP_PORT_RANGE;
  return pool.transaction((tx) =>
    registerNode(tx, {
      name: nodeName,
      grpcAddress: config.MINIMCP_GRPC_ADVERTISE ?? config.MINIMCP_GRPC_LISTEN,
      publicHost: config.MINIMCP_PUBLIC_HOST,
      portRangeStart: range.start,
      portRangeEnd: range.end,
      capacity: config.MINIMCP_NODE_CAPACITY ?? range.end - range.start + 1,
      agentVersion,
    }),
  );
}

/** Log partitions for this month and the next ones exist before the first line. */
export async function prepareLogPartitions(pool: DatabasePool): Promise<void> {
  await pool.query(sql.unsafe`SELECT minimcp_maintain_partitions(3, NULL)`);
}
