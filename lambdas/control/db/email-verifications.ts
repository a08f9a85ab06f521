// email_verification_tokens: single-use, expiring links that prove a user
// reads their mailbox. Only the SHA-256 of a token is kept. Redeeming one
// happens before anyone is authenticated, so it runs as system.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * A new token for the user's current address; any earlier unused one is
 * spent, so only the newest link works.
 */
export async function insertVerificationToken(
  db: CommonQueryMethods,
  token: { userId: string; email: string; hash: string; expiresAt: Date },
): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE email_verification_tokens SET used_at = CURRENT_TIMESTAMP
    WHERE user_id = ${token.userId} AND used_at IS NULL
  `);
  await db.query(sql.unsafe`
    INSERT INTO email_verification_tokens (user_id, token_hash, email, expires_at)
    VALUES (${token.userId}, ${token.hash}, ${token.email}, ${sql.timestamp(token.expiresAt)})
  `);
}

export const VerificationTokenRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid(),
  /** The address the link was sent to still is the user's, and the user is live. */
  email_current: z.boolean(),
  expired: z.boolean(),
  used: z.boolean(),
});
export type VerificationTokenRow = z.infer<typeof VerificationTokenRow>;

/** The token with this hash, locked for redemption, or null. */
export async function findVerificationToken(
  db: CommonQueryMethods,
  tokenHash: string,
): Promise<VerificationTokenRow | null> {
  return db.maybeOne(sql.type(VerificationTokenRow)`
    SELECT t.id, t.user_id,
           (u.email = t.email AND u.deleted_at IS NULL AND u.is_active = true) AS email_current,
           t.expires_at <= CURRENT_TIMESTAMP AS expired,
           t.used_at IS NOT NULL AS used
    FROM email_verification_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = ${tokenHash}
    FOR UPDATE OF t
  `);
}

export async function markVerificationTokenUsed(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE email_verification_tokens SET used_at = CURRENT_TIMESTAMP WHERE id = ${id}
  `);
}

export async function deleteVerificationTokensOfUser(
  db: CommonQueryMethods,
  userId: string,
): Promise<number> {
  const result = await db.query(sql.unsafe`
    DELETE FROM email_verification_tokens WHERE user_id = ${userId}
  `);
  return result.rowCount;
}
