// mcp_events: the audit trail. Every state change of an instance writes one,
// in the transaction that made the change.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { EventType } from '../domain.js';
import { JsonObject } from '../domain.js';

export interface NewEvent {
  instanceId: string;
  userId: string | null;
  type: EventType;
  data?: JsonObject;
  ipAddress?: string | null;
  userAgent?: string | null;
}

export const EventRow = z.object({
  id: z.string().uuid(),
  mcp_instance_id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  event_type: z.string(),
  event_data: JsonObject.nullable(),
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: z.date(),
});
export type EventRow = z.infer<typeof EventRow>;

export async function insertEvent(db: CommonQueryMethods, event: NewEvent): Promise<EventRow> {
  return db.one(sql.type(EventRow)`
    INSERT INTO mcp_events (mcp_instance_id, user_id, event_type, event_data, ip_address, user_agent)
    VALUES (
      ${event.instanceId}, ${event.userId}, ${event.type}, ${sql.jsonb(event.data ?? {})},
      ${event.ipAddress ?? null}::inet, ${event.userAgent ?? null}
    )
    RETURNING id, mcp_instance_id, user_id, event_type, event_data, host(ip_address) AS ip_address,
      user_agent, created_at
  `);
}

export interface EventQuery {
  instanceId: string;
  before?: { createdAt: Date; id: string };
  limit: number;
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function listEvents(
  db: CommonQueryMethods,
  query: EventQuery,
): Promise<readonly EventRow[]> {
  const after = query.before
    ? sql.fragment`AND (created_at, id) < (${sql.timestamp(query.before.createdAt)}, ${query.before.id}::uuid)`
    : sql.fragment``;
  return db.any(sql.type(EventRow)`
    SELECT id, mcp_instance_id, user_id, event_type, event_data, host(ip_address) AS ip_address,
      user_agent, created_at
    FROM mcp_events
    WHERE mcp_instance_id = ${query.instanceId} ${after}
    ORDER BY created_at DESC, id DESC
    LIMIT ${query.limit}
  `);
}
