// Changes to many live (pending or running) instances at once: the
// maintenance job's expiry and down-node sweeps, and the node drain's lock on
// a node's instances. Each row changes once however many callers run.
import { sql, type CommonQueryMethods, type FragmentSqlToken } from 'slonik';
import { z } from 'zod';
import { InstanceStatus } from '../../../core/domain.js';

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
