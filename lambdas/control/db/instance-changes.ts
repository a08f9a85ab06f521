// mcp_instances changed by an owner's request through the instance service:
// create (insert and port), delete, extend, rotate the token, restore (a new
// placement, also the drain's move), and the per-user limit that guards them.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { JsonObject } from '../../../core/domain.js';
import { InstanceRow } from '../../../core/db/instances.js';

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

export async function setInstancePort(
  db: CommonQueryMethods,
  id: string,
  port: number,
): Promise<void> {
  await db.query(sql.unsafe`UPDATE mcp_instances SET assigned_port = ${port} WHERE id = ${id}`);
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
