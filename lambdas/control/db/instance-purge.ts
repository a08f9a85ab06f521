// Retention: instance rows that ended more than cleanup.retention_days ago are
// removed, with what hangs off them (their logs and events by the foreign
// keys' cascade; their port rows released first). An instance is purged only
// once its newest event and log line are past retention too, so its audit
// trail and logs live at least retention_days after their last entry.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { releasePortsOfInstances } from '../../../core/db/ports.js';

const PurgedRow = z.object({ id: z.string().uuid() });

/**
 * Removes up to `limit` ended instances: deleted before the cutoff, or
 * expired, failed or disconnected with their expiry and last change before it
 * (those can no longer be restored). Rows another transaction holds are
 * skipped. Run it in system scope; returns the ids removed.
 */
export async function purgeEndedInstances(
  db: CommonQueryMethods,
  retentionDays: number,
  limit: number,
): Promise<readonly string[]> {
  const cutoff = sql.fragment`CURRENT_TIMESTAMP - make_interval(days => ${retentionDays})`;
  const picked = await db.any(sql.type(PurgedRow)`
    SELECT mi.id FROM mcp_instances mi
    WHERE (
        mi.deleted_at < ${cutoff}
        OR (mi.deleted_at IS NULL AND mi.status IN ('expired', 'error', 'disconnected')
            AND mi.expires_at < ${cutoff} AND mi.updated_at < ${cutoff})
      )
      AND NOT EXISTS (
        SELECT 1 FROM mcp_events e WHERE e.mcp_instance_id = mi.id AND e.created_at >= ${cutoff}
      )
      AND NOT EXISTS (
        SELECT 1 FROM mcp_logs l WHERE l.mcp_instance_id = mi.id AND l.timestamp >= ${cutoff}
      )
    ORDER BY mi.updated_at
    LIMIT ${limit}
    FOR UPDATE OF mi SKIP LOCKED
  `);
  const ids = picked.map((row) => row.id);
  if (ids.length === 0) return [];
  await releasePortsOfInstances(db, ids);
  await db.query(sql.unsafe`DELETE FROM mcp_instances WHERE id = ANY(${sql.array(ids, 'uuid')})`);
  return ids;
}
