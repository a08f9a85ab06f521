// admin_events: the audit trail of admin actions that belong to no instance
// (a system setting changed), written in the transaction of the change.
import { isIP } from 'node:net';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject } from '../../../core/domain.js';

/** Who acted: an admin user, or the bootstrap admin token (no user behind it). */
export type AdminActor = { kind: 'user'; userId: string } | { kind: 'bootstrap-admin' };

export interface NewAdminEvent {
  actor: AdminActor;
  type: 'setting_changed';
  subject: string;
  data: JsonObject;
  ipAddress?: string | null;
  userAgent?: string | null;
}

export const AdminEventRow = z.object({
  id: z.string().uuid(),
  actor_user_id: z.string().uuid().nullable(),
  actor_kind: z.enum(['user', 'bootstrap-admin']),
  event_type: z.string(),
  subject: z.string(),
  event_data: JsonObject,
  ip_address: z.string().nullable(),
  user_agent: z.string().nullable(),
  created_at: z.date(),
});
export type AdminEventRow = z.infer<typeof AdminEventRow>;

export async function insertAdminEvent(
  db: CommonQueryMethods,
  event: NewAdminEvent,
): Promise<AdminEventRow> {
  const ip = event.ipAddress ?? null;
  return db.one(sql.type(AdminEventRow)`
    INSERT INTO admin_events (actor_user_id, actor_kind, event_type, subject, event_data, ip_address, user_agent)
    VALUES (
      ${event.actor.kind === 'user' ? event.actor.userId : null}, ${event.actor.kind},
      ${event.type}, ${event.subject}, ${sql.jsonb(event.data as never)},
      ${ip !== null && isIP(ip) !== 0 ? ip : null}::inet, ${event.userAgent?.slice(0, 1000) ?? null}
    )
    RETURNING id, actor_user_id, actor_kind, event_type, subject, event_data,
      host(ip_address) AS ip_address, user_agent, created_at
  `);
}

/** The newest event of each subject given (e.g. each setting's last change), by subject. */
export async function latestAdminEvents(
  db: CommonQueryMethods,
  subjects: readonly string[],
): Promise<ReadonlyMap<string, AdminEventRow>> {
  const rows = await db.any(sql.type(AdminEventRow)`
    SELECT DISTINCT ON (subject) id, actor_user_id, actor_kind, event_type, subject, event_data,
      host(ip_address) AS ip_address, user_agent, created_at
    FROM admin_events WHERE subject = ANY(${sql.array(subjects, 'text')})
    ORDER BY subject, created_at DESC, id DESC
  `);
  return new Map(rows.map((row) => [row.subject, row]));
}
