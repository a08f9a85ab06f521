// The sample queries of the database schema document ("Sample Queries"), kept
// together here and tested as the document states them. No production path
// calls them: the flows use their own queries (the reconciler, the maintenance
// job, placement), which differ from these on purpose. The "API Key Usage
// Check" is the exception: GET /v1/keys runs it, so it lives with its table
// (core/db/api-keys.ts, listKeyUsage).
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { InstanceStatus } from '../domain.js';
import { InstanceRow } from './instances.js';

/** Schema document, "Get Active MCP Instances for User". */
export const ActiveInstanceRow = z.object({
  id: z.string().uuid(),
  access_token_prefix: z.string(),
  access_url: z.string(),
  assigned_port: z.number().int().nullable(),
  process_id: z.number().int().nullable(),
  status: InstanceStatus,
  expires_at: z.date(),
  last_accessed: z.date().nullable(),
  mcp_type: z.string(),
  display_name: z.string(),
  icon_url: z.string().nullable(),
});
export type ActiveInstanceRow = z.infer<typeof ActiveInstanceRow>;

export async function listActiveInstancesForUser(
  db: CommonQueryMethods,
  userId: string,
): Promise<readonly ActiveInstanceRow[]> {
  return db.any(sql.type(ActiveInstanceRow)`
    SELECT
      mi.id, mi.access_token_prefix, mi.access_url, mi.assigned_port, mi.process_id,
      mi.status, mi.expires_at, mi.last_accessed,
      mt.name AS mcp_type, mt.display_name, mt.icon_url
    FROM mcp_instances mi
    JOIN mcp_types mt ON mi.mcp_type_id = mt.id
    WHERE mi.user_id = ${userId}
      AND mi.deleted_at IS NULL
      AND mi.status IN ('running', 'pending')
    ORDER BY mi.created_at DESC
  `);
}

/** Schema document, "Get MCP Instance with Logs" (by the access token's hash). */
export const InstanceWithLogsRow = InstanceRow.extend({
  logs: z.array(
    z.object({
      id: z.string().uuid(),
      timestamp: z.string(),
      level: z.string(),
      message: z.string(),
    }),
  ),
});
export type InstanceWithLogsRow = z.infer<typeof InstanceWithLogsRow>;

export async function findInstanceWithLogsByTokenHash(
  db: CommonQueryMethods,
  accessTokenHash: string,
  logLimit = 100,
): Promise<InstanceWithLogsRow | null> {
  return db.maybeOne(sql.type(InstanceWithLogsRow)`
    SELECT
      mi.id, mi.user_id, mi.mcp_type_id, mi.api_key_id, mi.node_id, mi.process_id,
      mi.access_token_hash, mi.access_token_prefix, mi.access_url, mi.assigned_port,
      mi.status, mi.expires_at, mi.config, mi.error_message, mi.last_accessed, mi.stats,
      mi.created_at, mi.updated_at, mi.deleted_at,
      COALESCE(
        (SELECT JSON_AGG(JSON_BUILD_OBJECT(
            'id', ml.id, 'timestamp', ml.timestamp, 'level', ml.level, 'message', ml.message
          ) ORDER BY ml.timestamp DESC)
         FROM (SELECT * FROM mcp_logs WHERE mcp_instance_id = mi.id ORDER BY timestamp DESC LIMIT ${logLimit}) ml),
        '[]'
      ) AS logs
    FROM mcp_instances mi
    WHERE mi.access_token_hash = ${accessTokenHash}
  `);
}

/** Schema document, "Expired MCP Cleanup": marks them and says what to stop. */
export const ExpiredInstanceRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  node_id: z.string().uuid().nullable(),
  process_id: z.number().int().nullable(),
  assigned_port: z.number().int().nullable(),
});
export type ExpiredInstanceRow = z.infer<typeof ExpiredInstanceRow>;

export async function markExpiredInstances(
  db: CommonQueryMethods,
): Promise<readonly ExpiredInstanceRow[]> {
  return db.any(sql.type(ExpiredInstanceRow)`
    UPDATE mcp_instances
    SET status = 'expired', updated_at = CURRENT_TIMESTAMP
    WHERE expires_at < CURRENT_TIMESTAMP
      AND status IN ('running', 'pending')
      AND deleted_at IS NULL
    RETURNING id, user_id, node_id, process_id, assigned_port
  `);
}

/** Schema document, "Process Health Check". */
export const RunningProcessRow = z.object({
  id: z.string().uuid(),
  node_id: z.string().uuid().nullable(),
  process_id: z.number().int(),
  assigned_port: z.number().int().nullable(),
  status: InstanceStatus,
  created_at: z.date(),
});
export type RunningProcessRow = z.infer<typeof RunningProcessRow>;

export async function listRunningProcesses(
  db: CommonQueryMethods,
  nodeId?: string,
): Promise<readonly RunningProcessRow[]> {
  return db.any(sql.type(RunningProcessRow)`
    SELECT mi.id, mi.node_id, mi.process_id, mi.assigned_port, mi.status, mi.created_at
    FROM mcp_instances mi
    WHERE mi.status = 'running'
      AND mi.deleted_at IS NULL
      AND mi.process_id IS NOT NULL
      ${nodeId ? sql.fragment`AND mi.node_id = ${nodeId}` : sql.fragment``}
  `);
}

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
