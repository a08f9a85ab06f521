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

/** Many events in one statement (the maintenance job's batches); returns how many. */
export async function insertEvents(
  db: CommonQueryMethods,
  events: readonly NewEvent[],
): Promise<number> {
  if (events.length === 0) return 0;
  const result = await db.query(sql.unsafe`
    INSERT INTO mcp_events (mcp_instance_id, user_id, event_type, event_data, ip_address, user_agent)
    SELECT * FROM ${sql.unnest(
      events.map((e) => [
        e.instanceId,
        e.userId,
        e.type,
        JSON.stringify(e.data ?? {}),
        e.ipAddress ?? null,
        e.userAgent ?? null,
      ]),
      ['uuid', 'uuid', 'text', 'jsonb', 'inet', 'text'],
    )}
  `);
  return result.rowCount;
}

/** An event with created_at as text with its microseconds, for exact keyset cursors. */
export const EventPageRow = EventRow.extend({ cursor_at: z.string() });
export type EventPageRow = z.infer<typeof EventPageRow>;

/**
 * Newest first, keyset-paginated on (created_at, id); the cursor keeps created_at's
 * microseconds: events get CURRENT_TIMESTAMP, and several can share a
 * millisecond, which a Date cursor would skip.
 */
export async function listEventsPage(
  db: CommonQueryMethods,
  query: { instanceId: string; before?: { at: string; id: string }; limit: number },
): Promise<readonly EventPageRow[]> {
  const after = query.before
    ? sql.fragment`AND (created_at, id) < (${query.before.at}::timestamptz, ${query.before.id}::uuid)`
    : sql.fragment``;
  return db.any(sql.type(EventPageRow)`
    SELECT id, mcp_instance_id, user_id, event_type, event_data, host(ip_address) AS ip_address,
      user_agent, created_at,
      to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
    FROM mcp_events
    WHERE mcp_instance_id = ${query.instanceId} ${after}
    ORDER BY created_at DESC, id DESC
    LIMIT ${query.limit}
  `);
}

/** The data of the instance's first event of a type (e.g. what `created` recorded), if kept. */
export async function findFirstEventData(
  db: CommonQueryMethods,
  instanceId: string,
  type: EventType,
): Promise<JsonObject | null> {
  const row = await db.maybeOne(sql.type(z.object({ event_data: JsonObject.nullable() }))`
    SELECT event_data FROM mcp_events
    WHERE mcp_instance_id = ${instanceId} AND event_type = ${type}
    ORDER BY created_at, id
    LIMIT 1
  `);
  return row?.event_data ?? null;
}
