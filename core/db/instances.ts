// mcp_instances: the row, and an instance's run as its node's agent sees it:
// the runtime spec it reads, and the runtime columns (status, process, error,
// usage) it writes. The API's reads and changes are in instance-details.ts and
// instance-changes.ts, the maintenance job's and drain's in instance-sweeps.ts.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { InstanceStatus, JsonObject } from '../domain.js';

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
  if (change.processId !== undefined)
    // stats.pid follows at once (the usage sampler writes it only on its next tick):
    // a restart or restore never shows the previous process's pid.
    sets.push(
      sql.fragment`process_id = ${change.processId}, stats = COALESCE(stats, '{}'::jsonb) || jsonb_build_object('pid', ${change.processId}::int)`,
    );
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
