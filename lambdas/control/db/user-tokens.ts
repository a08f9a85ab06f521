// user_api_tokens: the bearer tokens API clients present, kept as SHA-256.
// Row-level security scopes every row to its user; resolving a presented
// token to its user happens before anyone is known, so it runs as system.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { UserRole } from '../../../core/domain.js';

export const UserTokenRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid(),
  name: z.string(),
  token_prefix: z.string(),
  last_used_at: z.date().nullable(),
  expires_at: z.date().nullable(),
  revoked_at: z.date().nullable(),
  created_at: z.date(),
});
export type UserTokenRow = z.infer<typeof UserTokenRow>;

const tokenColumns = sql.fragment`
  id, user_id, name, token_prefix, last_used_at, expires_at, revoked_at, created_at
`;

export async function insertUserToken(
  db: CommonQueryMethods,
  token: { userId: string; name: string; hash: string; prefix: string; expiresAt: Date | null },
): Promise<UserTokenRow> {
  return db.one(sql.type(UserTokenRow)`
    INSERT INTO user_api_tokens (user_id, name, token_hash, token_prefix, expires_at)
    VALUES (${token.userId}, ${token.name}, ${token.hash}, ${token.prefix},
            ${token.expiresAt ? sql.timestamp(token.expiresAt) : null})
    RETURNING ${tokenColumns}
  `);
}

/** The user's tokens that are not revoked (expired ones included), newest first. */
export async function listUserTokens(
  db: CommonQueryMethods,
  userId: string,
): Promise<readonly UserTokenRow[]> {
  return db.any(sql.type(UserTokenRow)`
    SELECT ${tokenColumns} FROM user_api_tokens
    WHERE user_id = ${userId} AND revoked_at IS NULL
    ORDER BY created_at DESC, id
  `);
}

/** Revokes one of the user's tokens (idempotent); false when the user has no such token. */
export async function revokeUserToken(
  db: CommonQueryMethods,
  userId: string,
  tokenId: string,
): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    UPDATE user_api_tokens SET revoked_at = COALESCE(revoked_at, CURRENT_TIMESTAMP)
    WHERE id = ${tokenId} AND user_id = ${userId}
  `);
  return result.rowCount === 1;
}

export async function revokeAllUserTokens(db: CommonQueryMethods, userId: string): Promise<number> {
  const result = await db.query(sql.unsafe`
    UPDATE user_api_tokens SET revoked_at = CURRENT_TIMESTAMP
    WHERE user_id = ${userId} AND revoked_at IS NULL
  `);
  return result.rowCount;
}

/** A presented token that is valid now, with the user it speaks for. */
export const TokenPrincipalRow = z.object({
  token_id: z.string().uuid(),
  token_name: z.string(),
  token_expires_at: z.date().nullable(),
  user_id: z.string().uuid(),
  email: z.string(),
  name: z.string(),
  role: UserRole,
  /** last_used_at is older than a minute (or unset): worth a write. */
  touch_due: z.boolean(),
});
export type TokenPrincipalRow = z.infer<typeof TokenPrincipalRow>;

/**
 * Resolves a token hash to its principal: not revoked, not expired, and its
 * user active and not deleted. Needs system scope (the user is not known yet).
 */
export async function findTokenPrincipal(
  db: CommonQueryMethods,
  tokenHash: string,
): Promise<TokenPrincipalRow | null> {
  return db.maybeOne(sql.type(TokenPrincipalRow)`
    SELECT t.id AS token_id, t.name AS token_name, t.expires_at AS token_expires_at,
           u.id AS user_id, u.email, u.name, u.role,
           (t.last_used_at IS NULL OR t.last_used_at < CURRENT_TIMESTAMP - interval '1 minute') AS touch_due
    FROM user_api_tokens t
    JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = ${tokenHash}
      AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > CURRENT_TIMESTAMP)
      AND u.is_active = true AND u.deleted_at IS NULL
  `);
}

/** Records use at most once a minute per token, so reads stay reads. */
export async function touchUserToken(db: CommonQueryMethods, tokenId: string): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE user_api_tokens SET last_used_at = CURRENT_TIMESTAMP
    WHERE id = ${tokenId}
      AND (last_used_at IS NULL OR last_used_at < CURRENT_TIMESTAMP - interval '1 minute')
  `);
}
