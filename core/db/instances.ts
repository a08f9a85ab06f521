// Queries on mcp_instances: the desired state of every MCP instance.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { InstanceStatus, JsonObject } from '../domain.js';
import { NotFoundError } from '../errors.js';

export const InstanceRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  mcp_type_id: z.string().uuid(),
  api_key_id: z.string().uuid().nullable(),
  node_id: z.string().uuid().nullable(),
  process_id: z.number().int().nullable(),
  access_token_hash: z.string().length(64),
  access_token_prefix: z.string(),
  access_url: z.string(),
  assigned_port: z.number().int().nullable(),
  status: InstanceStatus,
  expires_at: z.date(),
  config: JsonObject.nullable(),
  error_message: z.string().nullable(),
  last_accessed: z.date().nullable(),
  stats: JsonObject.nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  deleted_at: z.date().nullable(),
});
export type InstanceRow = z.infer<typeof InstanceRow>;

const instanceColumns = sql.fragment`
  id, user_id, mcp_type_id, api_key_id, node_id, process_id, access_token_hash,
  access_token_prefix, access_url, assigned_port, status, expires_at, config,
  error_message, last_accessed, stats, created_at, updated_at, deleted_at
`;

export interface NewInstance {
  id?: string;
  userId: string | null;
  mcpTypeId: string;
  apiKeyId: string | null;
  nodeId: string | null;
  accessTokenHash: string;
  accessTokenPrefix: string;
  accessUrl: string;
  expiresAt: Date;
  config?: JsonObject;
}

export async function insertInstance(
  db: CommonQueryMethods,
  instance: NewInstance,
): Promise<InstanceRow> {
  return db.one(sql.type(InstanceRow)`
    INSERT INTO mcp_instances (
      id, user_id, mcp_type_id, api_key_id, node_id, access_token_hash,
      access_token_prefix, access_url, expires_at, config
    ) VALUES (
      COALESCE(${instance.id ?? null}::uuid, gen_random_uuid()), ${instance.userId}, ${instance.mcpTypeId},
      ${instance.apiKeyId}, ${instance.nodeId}, ${instance.accessTokenHash}, ${instance.accessTokenPrefix},
      ${instance.accessUrl}, ${sql.timestamp(instance.expiresAt)}, ${sql.jsonb(instance.config ?? {})}
    )
    RETURNING ${instanceColumns}
  `);
}

export async function findInstance(
  db: CommonQueryMethods,
  id: string,
): Promise<InstanceRow | null> {
  return db.maybeOne(sql.type(InstanceRow)`
    SELECT ${instanceColumns} FROM mcp_instances WHERE id = ${id} AND deleted_at IS NULL
  `);
}

export async function getInstance(db: CommonQueryMethods, id: string): Promise<InstanceRow> {
  const row = await findInstance(db, id);
  if (!row) throw new NotFoundError(`instance ${id} not found`, { instanceId: id });
  return row;
}

export async function setInstancePort(
  db: CommonQueryMethods,
  id: string,
  port: number,
): Promise<void> {
  await db.query(sql.unsafe`UPDATE mcp_instances SET assigned_port = ${port} WHERE id = ${id}`);
}

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

/** What an agent needs to run an instance: the row, its type, and its key id. */
export const RuntimeSpecRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  node_id: z.string().uuid().nullable(),
  status: InstanceStatus,
  assigned_port: z.number().int().nullable(),
  process_id: z.number().int().nullable(),
  access_token_hash: z.string().length(64),
  expires_at: z.date(),
  deleted_at: z.date().nullable(),
  config: JsonObject.nullable(),
  api_key_id: z.string().uuid().nullable(),
  type_name: z.string(),
  server_script: z.string().nullable(),
  command: z.string().nullable(),
  args: z.array(z.string()),
  env_mapping: z.record(z.string(), z.string()),
  requires_key: z.boolean(),
  config_template: JsonObject,
  resource_limits: JsonObject.nullable(),
});
export type RuntimeSpecRow = z.infer<typeof RuntimeSpecRow>;

const runtimeSpecSelect = sql.fragment`
  SELECT mi.id, mi.user_id, mi.node_id, mi.status, mi.assigned_port, mi.process_id,
    mi.access_token_hash, mi.expires_at, mi.deleted_at, mi.config, mi.api_key_id,
    mt.name AS type_name, mt.server_script, mt.command, mt.args, mt.env_mapping,
    mt.requires_key, mt.config_template, mt.resource_limits
  FROM mcp_instances mi
  JOIN mcp_types mt ON mt.id = mi.mcp_type_id
`;

/** The instances a node should be running now (the reconciler's desired state). */
export async function listDesiredInstancesForNode(
  db: CommonQueryMethods,
  nodeId: string,
): Promise<readonly RuntimeSpecRow[]> {
  return db.any(sql.type(RuntimeSpecRow)`
    ${runtimeSpecSelect}
    WHERE mi.node_id = ${nodeId}
      AND mi.status IN ('pending', 'running')
      AND mi.deleted_at IS NULL
      AND mi.expires_at > CURRENT_TIMESTAMP
      AND mi.assigned_port IS NOT NULL
    ORDER BY mi.created_at
  `);
}

export async function findRuntimeSpec(
  db: CommonQueryMethods,
  instanceId: string,
): Promise<RuntimeSpecRow | null> {
  return db.maybeOne(sql.type(RuntimeSpecRow)`${runtimeSpecSelect} WHERE mi.id = ${instanceId}`);
}

/** Sets the runtime columns an agent owns; returns false if the row is gone or moved. */
export async function updateInstanceRuntime(
  db: CommonQueryMethods,
  instanceId: string,
  nodeId: string,
  change: { status?: InstanceStatus; processId?: number | null; errorMessage?: string | null },
): Promise<boolean> {
  const sets = [];
  if (change.status !== undefined) sets.push(sql.fragment`status = ${change.status}`);
  if (change.processId !== undefined) sets.push(sql.fragment`process_id = ${change.processId}`);
  if (change.errorMessage !== undefined)
    sets.push(sql.fragment`error_message = ${change.errorMessage}`);
  if (sets.length === 0) return true;
  const result = await db.query(sql.unsafe`
    UPDATE mcp_instances SET ${sql.join(sets, sql.fragment`, `)}
    WHERE id = ${instanceId} AND node_id = ${nodeId}
  `);
  return result.rowCount === 1;
}

export interface InstanceUsage {
  instanceId: string;
  lastAccessed?: Date;
  stats?: JsonObject;
}

/** Writes batched gateway/sampler figures for many instances in one statement. */
export async function recordInstanceUsage(
  db: CommonQueryMethods,
  usage: readonly InstanceUsage[],
): Promise<void> {
  if (usage.length === 0) return;
  await db.query(sql.unsafe`
    UPDATE mcp_instances mi SET
      last_accessed = GREATEST(mi.last_accessed, u.last_accessed),
      stats = CASE WHEN u.stats IS NULL THEN mi.stats ELSE COALESCE(mi.stats, '{}'::jsonb) || u.stats END
    FROM ${sql.unnest(
      usage.map((u) => [
        u.instanceId,
        u.lastAccessed?.toISOString() ?? null,
        u.stats ? JSON.stringify(u.stats) : null,
      ]),
      ['uuid', 'timestamptz', 'jsonb'],
    )} AS u(id, last_accessed, stats)
    WHERE mi.id = u.id
  `);
}
