// This node in the database: its row and port pool (MINIMCP_PORT_RANGE, else
// the port.range_* settings) registered together, and the log partitions its
// lines will go to.
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import type { AgentConfig } from '../../core/config.js';
import { registerNode, resizeNodePool, type NodeRow } from '../../core/db/nodes.js';
import { getSettings, type Settings } from '../../core/db/settings.js';

/**
 * The node's port pool: MINIMCP_PORT_RANGE when set, else the
 * port.range_start/port.range_end system settings (read in the registration's
 * transaction).
 */
export async function portRangeOf(
  db: CommonQueryMethods,
  config: Pick<AgentConfig, 'MINIMCP_PORT_RANGE'>,
): Promise<{ start: number; end: number }> {
  if (config.MINIMCP_PORT_RANGE) return config.MINIMCP_PORT_RANGE;
  const settings = await getSettings(db);
  const range = { start: settings['port.range_start'], end: settings['port.range_end'] };
  if (range.end < range.start) {
    throw new Error(
      `the port.range_start/port.range_end settings are not a range (${range.start}-${range.end}); fix them (PATCH /v1/settings/{key}) or set MINIMCP_PORT_RANGE`,
    );
  }
  return range;
}

/** One transaction: placement never sees the node without its port pool. */
export function registerThisNode(
  pool: DatabasePool,
  config: AgentConfig,
  nodeName: string,
  agentVersion: string,
): Promise<NodeRow> {
  return pool.transaction(async (tx) => {
    const range = await portRangeOf(tx, config);
    return registerNode(tx, {
      name: nodeName,
      grpcAddress: config.MINIMCP_GRPC_ADVERTISE ?? config.MINIMCP_GRPC_LISTEN,
      publicHost: config.MINIMCP_PUBLIC_HOST,
      portRangeStart: range.start,
      portRangeEnd: range.end,
      capacity: config.MINIMCP_NODE_CAPACITY ?? range.end - range.start + 1,
      agentVersion,
    });
  });
}

/**
 * Without MINIMCP_PORT_RANGE the pool follows the settings while the agent
 * runs: each settings read (usage.ts) applies a changed range (ports held
 * outside the new range stay until released). Undefined with the variable set.
 * `node` is the agent's own view of its row, kept current.
 */
export function followPortRange(
  pool: DatabasePool,
  config: AgentConfig,
  node: NodeRow,
): ((settings: Settings) => Promise<void>) | undefined {
  if (config.MINIMCP_PORT_RANGE) return undefined;
  return async (settings) => {
    const start = settings['port.range_start'];
    const end = settings['port.range_end'];
    if (end < start || (start === node.port_range_start && end === node.port_range_end)) return;
    const capacity = config.MINIMCP_NODE_CAPACITY ?? end - start + 1;
    const row = await pool.transaction((tx) =>
      resizeNodePool(tx, node.id, { start, end, capacity }),
    );
    Object.assign(node, row);
  };
}

/** Log partitions for this month and the next ones exist before the first line. */
export async function prepareLogPartitions(pool: DatabasePool): Promise<void> {
  await pool.query(sql.unsafe`SELECT minimcp_maintain_partitions(3, NULL)`);
}
