// A user's data across tables, for the account lifecycle: revoking what a
// deleted user holds, erasing what an erased user leaves, and reading it all
// back for an export. Each runs as the user (row-level security) or as system.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject } from '../../../core/domain.js';

/** The ids of the user's instances that are not deleted yet (any status). */
export async function listUndeletedInstanceIds(
  db: CommonQueryMethods,
  userId: string,
): Promise<readonly string[]> {
  return db.anyFirst(sql.type(z.object({ id: z.string().uuid() }))`
    SELECT id FROM mcp_instances WHERE user_id = ${userId} AND deleted_at IS NULL
    ORDER BY created_at, id
  `);
}

/** Soft-revokes the user's API keys (kept, inactive); returns how many changed. */
export async function deactivateKeysOfUser(db: CommonQueryMethods, userId: string) {
  const result = await db.query(sql.unsafe`
    UPDATE api_keys SET is_active = false WHERE user_id = ${userId} AND is_active IS DISTINCT FROM false
  `);
  return result.rowCount;
}

/** Erasure: the keys' envelopes and the API tokens go for good. */
export async function deleteKeysAndTokensOfUser(db: CommonQueryMethods, userId: string) {
  const keys = await db.query(sql.unsafe`DELETE FROM api_keys WHERE user_id = ${userId}`);
  const tokens = await db.query(sql.unsafe`DELETE FROM user_api_tokens WHERE user_id = ${userId}`);
  return { keys: keys.rowCount, tokens: tokens.rowCount };
}

/**
 * Erasure of what the instances hold about the person: their logs (a
 * server's output can quote anything), their config, and the IP address and
 * user agent of their events. The rows and event types stay: the audit trail.
 */
export async function scrubInstancesOfUser(db: CommonQueryMethods, userId: string) {
  const logs = await db.query(sql.unsafe`
    DELETE FROM mcp_logs WHERE mcp_instance_id IN (SELECT id FROM mcp_instances WHERE user_id = ${userId})
  `);
  await db.query(sql.unsafe`
    UPDATE mcp_events SET ip_address = NULL, user_agent = NULL
    WHERE mcp_instance_id IN (SELECT id FROM mcp_instances WHERE user_id = ${userId})
      AND (ip_address IS NOT NULL OR user_agent IS NOT NULL)
  `);
  const instances = await db.query(sql.unsafe`
    UPDATE mcp_instances SET config = '{}', error_message = NULL WHERE user_id = ${userId}
  `);
  return { logs: logs.rowCount, instances: instances.rowCount };
}

export const ExportTokenRow = z.object({
  id: z.string().uuid(),
  name: z.string(),
  token_prefix: z.string(),
  created_at: z.date(),
  last_used_at: z.date().nullable(),
  expires_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
});

export async function listTokensForExport(db: CommonQueryMethods, userId: string, limit: number) {
  return db.any(sql.type(ExportTokenRow)`
    SELECT id, name, token_prefix, created_at, last_used_at, expires_at, revoked_at
    FROM user_api_tokens WHERE user_id = ${userId}
    ORDER BY created_at DESC, id LIMIT ${limit}
  `);
}

export const ExportInstanceRow = z.object({
  id: z.string().uuid(),
  type: z.string(),
  status: z.string(),
  access_url: z.string(),
  access_token_prefix: z.string(),
  config: JsonObject.nullable(),
  expires_at: z.date(),
  created_at: z.date(),
  deleted_at: z.date().nullable(),
});

/** Every instance of the user, deleted ones included (they are the user's data too). */
export async function listInstancesForExport(
  db: CommonQueryMethods,
  userId: string,
  limit: number,
) {
  return db.any(sql.type(ExportInstanceRow)`
    SELECT mi.id, mt.name AS type, mi.status, mi.access_url, mi.access_token_prefix, mi.config,
      mi.expires_at, mi.created_at, mi.deleted_at
    FROM mcp_instances mi JOIN mcp_types mt ON mt.id = mi.mcp_type_id
    WHERE mi.user_id = ${userId}
    ORDER BY mi.created_at DESC, mi.id LIMIT ${limit}
  `);
}

export const ExportEventRow = z.object({
  instance_id: z.string().uuid(),
  type: z.string(),
  data: JsonObject.nullable(),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: z.date(),
});

export async function listEventsForExport(db: CommonQueryMethods, userId: string, limit: number) {
  return db.any(sql.type(ExportEventRow)`
    SELECT e.mcp_instance_id AS instance_id, e.event_type AS type, e.event_data AS data,
      host(e.ip_address) AS ip_address, e.user_agent, e.created_at
    FROM mcp_events e JOIN mcp_instances mi ON mi.id = e.mcp_instance_id
    WHERE mi.user_id = ${userId}
    ORDER BY e.created_at DESC, e.id DESC LIMIT ${limit}
  `);
}

export const ExportLogRow = z.object({
  instance_id: z.string().uuid(),
  timestamp: z.date(),
  level: z.string(),
  source: z.string().nullable(),
  message: z.string(),
});

/** The newest log lines of the user's instances since `since`. */
export async function listRecentLogsForExport(
  db: CommonQueryMethods,
  userId: string,
  since: Date,
  limit: number,
) {
  return db.any(sql.type(ExportLogRow)`
    SELECT l.mcp_instance_id AS instance_id, l.timestamp, l.level, l.source, l.message
    FROM mcp_logs l JOIN mcp_instances mi ON mi.id = l.mcp_instance_id
    WHERE mi.user_id = ${userId} AND l.timestamp >= ${sql.timestamp(since)}
    ORDER BY l.timestamp DESC, l.id DESC LIMIT ${limit}
  `);
}
