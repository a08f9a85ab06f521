// account_events: the audit trail of changes to an account that belong to no
// instance (email verified, deleted by an admin, erased by its owner). Rows
// carry ids, never an email or a name, so they outlive an erasure.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject } from '../../../core/domain.js';

export const AccountEventType = z.enum([
  'verification_sent',
  'email_verified',
  'deleted',
  'erased',
]);
export type AccountEventType = z.infer<typeof AccountEventType>;

/** Who acted: the user themself, an admin user, the bootstrap admin token, or the system. */
export type AccountActor =
  { kind: 'user' | 'admin'; userId: string } | { kind: 'bootstrap-admin' | 'system' };

export interface NewAccountEvent {
  userId: string;
  actor: AccountActor;
  type: AccountEventType;
  data?: JsonObject;
  ipAddress?: string | null;
  userAgent?: string | null;
}

export async function insertAccountEvent(
  db: CommonQueryMethods,
  event: NewAccountEvent,
): Promise<void> {
  const actorUserId = 'userId' in event.actor ? event.actor.userId : null;
  await db.query(sql.unsafe`
    INSERT INTO account_events (user_id, actor_user_id, actor, event_type, event_data, ip_address, user_agent)
    VALUES (${event.userId}, ${actorUserId}, ${event.actor.kind}, ${event.type},
            ${sql.jsonb(event.data ?? {})}, ${event.ipAddress ?? null}::inet, ${event.userAgent ?? null})
  `);
}

export const AccountEventRow = z.object({
  event_type: z.string(),
  actor: z.string(),
  actor_user_id: z.string().uuid().nullable(),
  event_data: JsonObject,
  created_at: z.date(),
});
export type AccountEventRow = z.infer<typeof AccountEventRow>;

/** The account's events, newest first, at most `limit`. */
export async function listAccountEvents(
  db: CommonQueryMethods,
  userId: string,
  limit: number,
): Promise<readonly AccountEventRow[]> {
  return db.any(sql.type(AccountEventRow)`
    SELECT event_type, actor, actor_user_id, event_data, created_at FROM account_events
    WHERE user_id = ${userId}
    ORDER BY created_at DESC, id DESC
    LIMIT ${limit}
  `);
}
