// mcp_instances as the API answers them: one instance or a page of a user's
// instances, with the type's name and the node's address, never the token hash.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { InstanceStatus } from '../../../core/domain.js';
import { InstanceRow } from '../../../core/db/instances.js';

/**
 * An instance as its owner may see it, with its type's name and its node's
 * address: never the token hash. `cursor_at` is created_at as text with its
 * microseconds, for keyset cursors (a Date keeps only milliseconds).
 */
export const InstanceDetailRow = InstanceRow.omit({
  process_id: true,
  access_token_hash: true,
  deleted_at: true,
}).extend({
  type_name: z.string(),
  node_name: z.string().nullable(),
  node_grpc_address: z.string().nullable(),
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
