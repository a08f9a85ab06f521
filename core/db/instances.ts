// Queries on mcp_instances: the desired state of every MCP instance.
import { sql, type CommonQueryMethods, type FragmentSqlToken } from 'slonik';
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
  /** Only when the row is in one of these statuses (a transition someone else may have made first). */
  fromStatuses?: readonly InstanceStatus[],
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
      ${fromStatuses ? sql.fragment`AND status = ANY(${sql.array([...fromStatuses], 'text')})` : sql.fragment``}
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

// ---------------------------------------------------------------------------
// The instance service (lambdas/control/instance-service.ts) and the maintenance job.

/**
 * An instance as its owner may see it, with its type's name and its node's
 * address: never the token hash. `cursor_at` is created_at as text with its
 * microseconds, for keyset cursors (a Date keeps only milliseconds).
 */
export const InstanceDetailRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  mcp_type_id: z.string().uuid(),
  type_name: z.string(),
  api_key_id: z.string().uuid().nullable(),
  node_id: z.string().uuid().nullable(),
  node_name: z.string().nullable(),
  node_grpc_address: z.string().nullable(),
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
  cursor_at: z.string(),
});
export type InstanceDetailRow = z.infer<typeof InstanceDetailRow>;

const instanceDetailSelect = sql.fragment`
  SELECT mi.id, mi.user_id, mi.mcp_type_id, mt.name AS type_name, mi.api_key_id, mi.node_id,
    n.name AS node_name, n.grpc_address AS node_grpc_address, mi.access_token_prefix,
    mi.access_url, mi.assigned_port, mi.status, mi.expires_at, mi.config, mi.error_message,
    mi.last_accessed, mi.stats, mi.created_at, mi.updated_at,
    to_char(mi.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
  FROM mcp_instances mi
  JOIN mcp_types mt ON mt.id = mi.mcp_type_id
  LEFT JOIN nodes n ON n.id = mi.node_id
`;

/** A live (not deleted) instance with its type and node; `lock` takes its row lock. */
export async function findInstanceDetail(
  db: CommonQueryMethods,
  id: string,
  options: { lock?: boolean } = {},
): Promise<InstanceDetailRow | null> {
  return db.maybeOne(sql.type(InstanceDetailRow)`
    ${instanceDetailSelect}
    WHERE mi.id = ${id} AND mi.deleted_at IS NULL
    ${options.lock ? sql.fragment`FOR UPDATE OF mi` : sql.fragment``}
  `);
}

export interface InstanceListQuery {
  userId: string;
  status?: InstanceStatus;
  typeName?: string;
  /** Continue after this (created_at as text with microseconds, id), newest first. */
  before?: { at: string; id: string };
  limit: number;
}

/** A user's live instances, newest first, keyset-paginated on (created_at, id). */
export async function listInstanceDetails(
  db: CommonQueryMethods,
  query: InstanceListQuery,
): Promise<readonly InstanceDetailRow[]> {
  const conditions = [
    sql.fragment`mi.user_id = ${query.userId}`,
    sql.fragment`mi.deleted_at IS NULL`,
  ];
  if (query.status) conditions.push(sql.fragment`mi.status = ${query.status}`);
  if (query.typeName) conditions.push(sql.fragment`mt.name = ${query.typeName}`);
  if (query.before)
    conditions.push(
      sql.fragment`(mi.created_at, mi.id) < (${query.before.at}::timestamptz, ${query.before.id}::uuid)`,
    );
  return db.any(sql.type(InstanceDetailRow)`
    ${instanceDetailSelect}
    WHERE ${sql.join(conditions, sql.fragment` AND `)}
    ORDER BY mi.created_at DESC, mi.id DESC
    LIMIT ${query.limit}
  `);
}

/**
 * Serialises a user's instance-creating transactions (create, restore) until
 * they commit, so the per-user limit holds under concurrency.
 */
export async function lockUserInstances(db: CommonQueryMethods, userId: string): Promise<void> {
  await db.query(
    sql.unsafe`SELECT pg_advisory_xact_lock(hashtextextended(${`minimcp.user-instances:${userId}`}, 0))`,
  );
}

/** Instances that count against the per-user limit: pending or running, not deleted. */
export async function countLiveInstancesOfUser(
  db: CommonQueryMethods,
  userId: string,
): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number().int() }))`
    SELECT count(*)::int AS n FROM mcp_instances
    WHERE user_id = ${userId} AND deleted_at IS NULL AND status IN ('pending', 'running')
  `);
}

export async function softDeleteInstance(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE mcp_instances SET deleted_at = CURRENT_TIMESTAMP WHERE id = ${id} AND deleted_at IS NULL
  `);
}

export async function setInstanceExpiry(
  db: CommonQueryMethods,
  id: string,
  expiresAt: Date,
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE mcp_instances SET expires_at = ${sql.timestamp(expiresAt)} WHERE id = ${id}
  `);
}

export async function setInstanceToken(
  db: CommonQueryMethods,
  id: string,
  token: { hash: string; prefix: string },
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE mcp_instances SET access_token_hash = ${token.hash}, access_token_prefix = ${token.prefix}
    WHERE id = ${id}
  `);
}

/** A restored instance: a new placement and expiry, pending again, its old run forgotten. */
export async function reassignInstance(
  db: CommonQueryMethods,
  id: string,
  change: {
    nodeId: string;
    port: number;
    accessUrl: string;
    expiresAt: Date;
    apiKeyId: string | null;
  },
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE mcp_instances SET
      node_id = ${change.nodeId}, assigned_port = ${change.port}, access_url = ${change.accessUrl},
      expires_at = ${sql.timestamp(change.expiresAt)}, api_key_id = ${change.apiKeyId},
      status = 'pending', process_id = NULL, error_message = NULL
    WHERE id = ${id}
  `);
}

/** An instance whose status the maintenance job changed, and where it ran. */
export const ChangedInstanceRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  node_id: z.string().uuid().nullable(),
  node_status: z.string().nullable(),
  node_grpc_address: z.string().nullable(),
  assigned_port: z.number().int().nullable(),
  previous_status: InstanceStatus,
});
export type ChangedInstanceRow = z.infer<typeof ChangedInstanceRow>;

/**
 * Sets `change` on up to `limit` pending or running instances that `where`
 * picks (over `mi`, the instance, and `n`, its node; `nodeJoin` says whether
 * an instance without a node can be picked), oldest `order` first. Rows
 * another transaction holds (an extend, a concurrent run of the job) are
 * skipped and a row changed meanwhile is re-checked, so each changes once
 * however many callers run at the same time.
 */
async function changeLiveInstances(
  db: CommonQueryMethods,
  pick: {
    nodeJoin: 'inner' | 'left';
    where: FragmentSqlToken;
    order: FragmentSqlToken;
    change: FragmentSqlToken;
    limit: number;
  },
): Promise<readonly ChangedInstanceRow[]> {
  const join = pick.nodeJoin === 'inner' ? sql.fragment`JOIN` : sql.fragment`LEFT JOIN`;
  return db.any(sql.type(ChangedInstanceRow)`
    WITH picked AS (
      SELECT mi.id, mi.status, n.status AS node_status, n.grpc_address AS node_grpc_address
      FROM mcp_instances mi
      ${join} nodes n ON n.id = mi.node_id
      WHERE ${pick.where} AND mi.status IN ('running', 'pending') AND mi.deleted_at IS NULL
      ORDER BY ${pick.order}
      LIMIT ${pick.limit}
      FOR UPDATE OF mi SKIP LOCKED
    )
    UPDATE mcp_instances mi SET ${pick.change}
    FROM picked
    WHERE mi.id = picked.id
    RETURNING mi.id, mi.user_id, mi.node_id, picked.node_status, picked.node_grpc_address,
      mi.assigned_port, picked.status AS previous_status
  `);
}

/** Marks up to `limit` running or pending instances past expires_at `expired`, each once. */
export async function expireDueInstances(
  db: CommonQueryMethods,
  limit: number,
): Promise<readonly ChangedInstanceRow[]> {
  return changeLiveInstances(db, {
    nodeJoin: 'left',
    where: sql.fragment`mi.expires_at < CURRENT_TIMESTAMP`,
    order: sql.fragment`mi.expires_at`,
    change: sql.fragment`status = 'expired'`,
    limit,
  });
}

/** Marks up to `limit` pending or running instances of nodes that are `down` `disconnected`, each once. */
export async function disconnectInstancesOfDownNodes(
  db: CommonQueryMethods,
  limit: number,
): Promise<readonly ChangedInstanceRow[]> {
  return changeLiveInstances(db, {
    nodeJoin: 'inner',
    where: sql.fragment`n.status = 'down'`,
    order: sql.fragment`mi.created_at`,
    change: sql.fragment`status = 'disconnected', process_id = NULL`,
    limit,
  });
}

export const LiveInstanceRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  expires_at: z.date(),
  api_key_id: z.string().uuid().nullable(),
});
export type LiveInstanceRow = z.infer<typeof LiveInstanceRow>;

/** Pending or running instances on a node (system scope), locked for a move. */
export async function lockLiveInstancesOnNode(
  db: CommonQueryMethods,
  nodeId: string,
): Promise<readonly LiveInstanceRow[]> {
  return db.any(sql.type(LiveInstanceRow)`
    SELECT id, user_id, expires_at, api_key_id FROM mcp_instances
    WHERE node_id = ${nodeId} AND deleted_at IS NULL AND status IN ('pending', 'running')
    ORDER BY created_at
    FOR UPDATE SKIP LOCKED
  `);
}
