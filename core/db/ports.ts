// port_allocations: each node's pool of public ports. Claims are safe under
// concurrency: FOR UPDATE SKIP LOCKED hands every claimer a different row.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { PortPoolExhaustedError } from '../errors.js';

const PortRow = z.object({ port: z.number().int() });

/** Schema document, "Get next available port" (for one node). */
export async function findNextFreePort(
  db: CommonQueryMethods,
  nodeId: string,
): Promise<number | null> {
  const row = await db.maybeOne(sql.type(PortRow)`
    SELECT port FROM port_allocations
    WHERE node_id = ${nodeId} AND is_available = true
    ORDER BY port
    LIMIT 1
  `);
  return row?.port ?? null;
}

/**
 * Takes the lowest free port of the node for the instance, skipping rows other
 * transactions hold. Throws PortPoolExhaustedError when none is free.
 */
export async function claimFreePort(
  db: CommonQueryMethods,
  nodeId: string,
  instanceId: string,
): Promise<number> {
  const row = await db.maybeOne(sql.type(PortRow)`
    UPDATE port_allocations pa
    SET is_available = false, mcp_instance_id = ${instanceId},
        allocated_at = CURRENT_TIMESTAMP, released_at = NULL
    FROM (
      SELECT node_id, port FROM port_allocations
      WHERE node_id = ${nodeId} AND is_available = true
      ORDER BY port
      LIMIT 1
      FOR UPDATE SKIP LOCKED
    ) free
    WHERE pa.node_id = free.node_id AND pa.port = free.port
    RETURNING pa.port
  `);
  if (!row) throw new PortPoolExhaustedError(`no free port on node ${nodeId}`, { nodeId });
  return row.port;
}

/** Schema document, "Allocate port to MCP instance": a given port, if free. */
export async function allocatePort(
  db: CommonQueryMethods,
  nodeId: string,
  port: number,
  instanceId: string,
): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE port_allocations
    SET is_available = false, mcp_instance_id = ${instanceId},
        allocated_at = CURRENT_TIMESTAMP, released_at = NULL
    WHERE node_id = ${nodeId} AND port = ${port}
      AND (is_available = true OR mcp_instance_id = ${instanceId})
  `);
  return result.rowCount === 1;
}

/** Schema document, "Release port when MCP terminates". Idempotent. */
export async function releasePort(
  db: CommonQueryMethods,
  nodeId: string,
  port: number,
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE port_allocations
    SET is_available = true, mcp_instance_id = NULL, released_at = CURRENT_TIMESTAMP
    WHERE node_id = ${nodeId} AND port = ${port} AND is_available = false
  `);
}

/** Releases whatever port the instance holds, on any node. */
export async function releasePortsOfInstance(
  db: CommonQueryMethods,
  instanceId: string,
): Promise<number> {
  const result = await db.query(sql.unsafe`
    UPDATE port_allocations
    SET is_available = true, mcp_instance_id = NULL, released_at = CURRENT_TIMESTAMP
    WHERE mcp_instance_id = ${instanceId}
  `);
  return result.rowCount;
}

/** Makes the node's pool cover exactly [start, end]; held ports outside it are kept. */
export async function ensurePortPool(
  db: CommonQueryMethods,
  nodeId: string,
  start: number,
  end: number,
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO port_allocations (node_id, port, is_available)
    SELECT ${nodeId}, p, true FROM generate_series(${start}::int, ${end}::int) AS p
    ON CONFLICT (node_id, port) DO NOTHING
  `);
  await db.query(sql.unsafe`
    DELETE FROM port_allocations
    WHERE node_id = ${nodeId} AND (port < ${start} OR port > ${end}) AND is_available = true
  `);
}

export const PortUsageRow = z.object({
  node_id: z.string().uuid(),
  free: z.number().int(),
  used: z.number().int(),
});
export type PortUsageRow = z.infer<typeof PortUsageRow>;

export async function countPorts(db: CommonQueryMethods, nodeId: string): Promise<PortUsageRow> {
  return db.one(sql.type(PortUsageRow)`
    SELECT ${nodeId}::uuid AS node_id,
      COUNT(*) FILTER (WHERE is_available)::int AS free,
      COUNT(*) FILTER (WHERE NOT is_available)::int AS used
    FROM port_allocations WHERE node_id = ${nodeId}
  `);
}
