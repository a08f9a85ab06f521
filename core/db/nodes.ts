// nodes: compute nodes, registered and kept fresh by their host agents.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject, NodeStatus } from '../domain.js';
import { NotFoundError } from '../errors.js';
import { ensurePortPool } from './ports.js';

export const NodeRow = z.object({
  id: z.string().uuid(),
  name: z.string(),
  grpc_address: z.string(),
  public_host: z.string(),
  port_range_start: z.number().int(),
  port_range_end: z.number().int(),
  capacity: z.number().int(),
  status: NodeStatus,
  last_heartbeat: z.date().nullable(),
  agent_version: z.string().nullable(),
  stats: JsonObject,
  created_at: z.date(),
  updated_at: z.date(),
});
export type NodeRow = z.infer<typeof NodeRow>;

const nodeColumns = sql.fragment`
  id, name, grpc_address, public_host, port_range_start, port_range_end, capacity,
  status, last_heartbeat, agent_version, stats, created_at, updated_at
`;

export interface NodeRegistration {
  name: string;
  grpcAddress: string;
  publicHost: string;
  portRangeStart: number;
  portRangeEnd: number;
  capacity: number;
  agentVersion: string;
}

/** Upserts the node by name as active with a fresh heartbeat, and its port pool. */
export async function registerNode(
  db: CommonQueryMethods,
  node: NodeRegistration,
): Promise<NodeRow> {
  const row = await db.one(sql.type(NodeRow)`
    INSERT INTO nodes (name, grpc_address, public_host, port_range_start, port_range_end, capacity,
                       agent_version, status, last_heartbeat)
    VALUES (${node.name}, ${node.grpcAddress}, ${node.publicHost}, ${node.portRangeStart},
            ${node.portRangeEnd}, ${node.capacity}, ${node.agentVersion}, 'active', CURRENT_TIMESTAMP)
    ON CONFLICT (name) DO UPDATE SET
      grpc_address = EXCLUDED.grpc_address, public_host = EXCLUDED.public_host,
      port_range_start = EXCLUDED.port_range_start, port_range_end = EXCLUDED.port_range_end,
      capacity = EXCLUDED.capacity, agent_version = EXCLUDED.agent_version,
      status = CASE WHEN nodes.status = 'draining' THEN 'draining' ELSE 'active' END,
      last_heartbeat = CURRENT_TIMESTAMP
    RETURNING ${nodeColumns}
  `);
  await ensurePortPool(db, row.id, node.portRangeStart, node.portRangeEnd);
  return row;
}

export async function recordHeartbeat(
  db: CommonQueryMethods,
  nodeId: string,
  stats: JsonObject,
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE nodes SET last_heartbeat = CURRENT_TIMESTAMP, stats = ${sql.jsonb(stats)},
      -- A node the maintenance job marked down comes back with its heartbeat;
      -- a draining node stays draining.
      status = CASE WHEN status = 'down' THEN 'active' ELSE status END
    WHERE id = ${nodeId}
  `);
}

/** A new port range (and capacity) for a registered node, and its pool made to match. */
export async function resizeNodePool(
  db: CommonQueryMethods,
  nodeId: string,
  pool: { start: number; end: number; capacity: number },
): Promise<NodeRow> {
  const row = await db.one(sql.type(NodeRow)`
    UPDATE nodes SET port_range_start = ${pool.start}, port_range_end = ${pool.end},
      capacity = ${pool.capacity}
    WHERE id = ${nodeId}
    RETURNING ${nodeColumns}
  `);
  await ensurePortPool(db, nodeId, pool.start, pool.end);
  return row;
}

export async function setNodeStatus(
  db: CommonQueryMethods,
  nodeId: string,
  status: NodeStatus,
): Promise<void> {
  await db.query(sql.unsafe`UPDATE nodes SET status = ${status} WHERE id = ${nodeId}`);
}

export async function getNode(db: CommonQueryMethods, id: string): Promise<NodeRow> {
  const row = await db.maybeOne(
    sql.type(NodeRow)`SELECT ${nodeColumns} FROM nodes WHERE id = ${id}`,
  );
  if (!row) throw new NotFoundError(`node ${id} not found`, { nodeId: id });
  return row;
}

export async function listNodes(db: CommonQueryMethods): Promise<readonly NodeRow[]> {
  return db.any(sql.type(NodeRow)`SELECT ${nodeColumns} FROM nodes ORDER BY name`);
}

export const StaleNodeRow = z.object({
  id: z.string().uuid(),
  name: z.string(),
  last_heartbeat: z.date().nullable(),
});
export type StaleNodeRow = z.infer<typeof StaleNodeRow>;

/**
 * Marks active or draining nodes whose last heartbeat is older than
 * `staleSeconds` (or missing) `down`. A heartbeat that lands meanwhile is
 * re-checked, and concurrent callers each mark a node once.
 */
export async function markStaleNodesDown(
  db: CommonQueryMethods,
  staleSeconds: number,
): Promise<readonly StaleNodeRow[]> {
  return db.any(sql.type(StaleNodeRow)`
    WITH stale AS (
      SELECT id FROM nodes
      WHERE status IN ('active', 'draining')
        AND (last_heartbeat IS NULL
          OR last_heartbeat < CURRENT_TIMESTAMP - make_interval(secs => ${staleSeconds}))
      FOR UPDATE SKIP LOCKED
    )
    UPDATE nodes n SET status = 'down'
    FROM stale
    WHERE n.id = stale.id
    RETURNING n.id, n.name, n.last_heartbeat
  `);
}

/** Active nodes with a heartbeat fresher than `freshSeconds`. */
export async function countHealthyNodes(
  db: CommonQueryMethods,
  freshSeconds: number,
): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number().int() }))`
    SELECT count(*)::int AS n FROM nodes
    WHERE status = 'active'
      AND last_heartbeat >= CURRENT_TIMESTAMP - make_interval(secs => ${freshSeconds})
  `);
}
