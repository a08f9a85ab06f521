// api_key_events: the audit trail of a user's API keys (stored, disabled,
// enabled, deleted), written in the transaction that made the change. It
// holds the key's hint, never the key.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject, type KeyEventType } from '../../../core/domain.js';

export interface NewKeyEvent {
  userId: string;
  apiKeyId: string;
  mcpTypeId: string;
  type: KeyEventType;
  data?: JsonObject;
  ipAddress?: string | null;
  userAgent?: string | null;
}

export const KeyEventRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid(),
  api_key_id: z.string().uuid(),
  mcp_type_id: z.string().uuid(),
  event_type: z.string(),
  event_data: JsonObject,
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: z.date(),
});
export type KeyEventRow = z.infer<typeof KeyEventRow>;

export async function insertKeyEvent(
  db: CommonQueryMethods,
  event: NewKeyEvent,
): Promise<KeyEventRow> {
  return db.one(sql.type(KeyEventRow)`
    INSERT INTO api_key_events (user_id, api_key_id, mcp_type_id, event_type, event_data, ip_address, user_agent)
    VALUES (
      ${event.userId}, ${event.apiKeyId}, ${event.mcpTypeId}, ${event.type},
      ${sql.jsonb(event.data ?? {})}, ${event.ipAddress ?? null}::inet, ${event.userAgent ?? null}
    )
    RETURNING id, user_id, api_key_id, mcp_type_id, event_type, event_data,
      host(ip_address) AS ip_address, user_agent, created_at
  `);
}
