// port_allocations: each node's pool of public ports. Claims are safe under
// concurrency: FOR UPDATE SKIP LOCKED hands every claimer a different row.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { PortPoolExhaustedError } from '../errors.js';

const PortRow = z.object({ port: z.number().int() });

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
  /** Of the ports held by an instance: the stalest and freshest agent health check. */
  oldest_health_check: z.date().nullable(),
  newest_health_check: z.date().nullable(),
  /** Held ports the agent never found healthy (yet). */
  never_checked: z.number().int(),
});
export type PortUsageRow = z.infer<typeof PortUsageRow>;

export async function countPorts(db: CommonQueryMethods, nodeId: string): Promise<PortUsageRow> {
  return db.one(sql.type(PortUsageRow)`
    SELECT ${nodeId}::uuid AS node_id,
      COUNT(*) FILTER (WHERE is_available)::int AS free,
      COUNT(*) FILTER (WHERE NOT is_available)::int AS used,
      MIN(last_health_check) FILTER (WHERE held) AS oldest_health_check,
      MAX(last_health_check) FILTER (WHERE held) AS newest_health_check,
      COUNT(*) FILTER (WHERE held AND last_health_check IS NULL)::int AS never_checked
    FROM (
      SELECT is_available, last_health_check,
        (NOT is_available AND mcp_instance_id IS NOT NULL) AS held
      FROM port_allocations WHERE node_id = ${nodeId}
    ) p
  `);
}

/** Releases the ports the given instances hold, on any node; returns how many. */
export async function releasePortsOfInstances(
  db: CommonQueryMethods,
  instanceIds: readonly string[],
): Promise<number> {
  if (instanceIds.length === 0) return 0;
  const result = await db.query(sql.unsafe`
    UPDATE port_allocations
    SET is_available = true, mcp_instance_id = NULL, released_at = CURRENT_TIMESTAMP
    WHERE mcp_instance_id = ANY(${sql.array(instanceIds, 'uuid')})
  `);
  return result.rowCount;
}

export const ReleasedPortRow = z.object({
  node_id: z.string().uuid(),
  port: z.number().int(),
  previous_instance_id: z.string().uuid().nullable(),
});
export type ReleasedPortRow = z.infer<typeof ReleasedPortRow>;

/**
 * Frees ports held for nothing: by no instance (its row was removed), or by
 * one that is deleted, no longer pending or running, or now placed elsewhere.
 * Port and instance rows are locked together (SKIP LOCKED), and a row changed
 * meanwhile is re-checked, so a port claimed by a create or restore still in
 * flight is never taken back. Instances hidden by row-level security are
 * never judged: run it in system scope to see them all.
 */
export async function releaseLeakedPorts(
  db: CommonQueryMethods,
): Promise<readonly ReleasedPortRow[]> {
  const orphaned = await db.any(sql.type(ReleasedPortRow)`
    WITH leaked AS (
      SELECT node_id, port FROM port_allocations
      WHERE is_available = false AND mcp_instance_id IS NULL
      FOR UPDATE SKIP LOCKED
    )
    UPDATE port_allocations pa
    SET is_available = true, released_at = CURRENT_TIMESTAMP
    FROM leaked
    WHERE pa.node_id = leaked.node_id AND pa.port = leaked.port
    RETURNING pa.node_id, pa.port, NULL::uuid AS previous_instance_id
  `);
  const stale = await db.any(sql.type(ReleasedPortRow)`
    WITH leaked AS (
      SELECT pa.node_id, pa.port, pa.mcp_instance_id
      FROM port_allocations pa
      JOIN mcp_instances mi ON mi.id = pa.mcp_instance_id
      WHERE pa.is_available = false
        AND (mi.deleted_at IS NOT NULL
          OR mi.status NOT IN ('pending', 'running')
          OR mi.node_id IS DISTINCT FROM pa.node_id
          OR mi.assigned_port IS DISTINCT FROM pa.port)
      FOR UPDATE OF pa, mi SKIP LOCKED
    )
    UPDATE port_allocations pa
    SET is_available = true, mcp_instance_id = NULL, released_at = CURRENT_TIMESTAMP
    FROM leaked
    WHERE pa.node_id = leaked.node_id AND pa.port = leaked.port
    RETURNING pa.node_id, pa.port, leaked.mcp_instance_id AS previous_instance_id
  `);
  return [...orphaned, ...stale];
}

/**
 * Stamps last_health_check on the node's ports that the probe found healthy,
 * in one statement; a port that changed hands since is left alone.
 */
export async function recordHealthChecks(
  db: CommonQueryMethods,
  nodeId: string,
  checks: readonly { port: number; instanceId: string }[],
): Promise<number> {
  if (checks.length === 0) return 0;
  const result = await db.query(sql.unsafe`
    UPDATE port_allocations pa SET last_health_check = CURRENT_TIMESTAMP
    FROM ${sql.unnest(
      checks.map((c) => [c.port, c.instanceId]),
      ['int4', 'uuid'],
    )} AS checked(port, instance_id)
    WHERE pa.node_id = ${nodeId} AND pa.port = checked.port
      AND pa.mcp_instance_id = checked.instance_id
  `);
  return result.rowCount;
}
