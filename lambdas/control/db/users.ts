// users: accounts that own keys and instances.
import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { UserRole } from '../../../core/domain.js';
import { ConflictError } from '../../../core/errors.js';

export const UserRow = z.object({
  id: z.string().uuid(),
  email: z.string(),
  name: z.string(),
  role: UserRole,
  is_active: z.boolean().nullable(),
  email_verified: z.boolean().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  deleted_at: z.date().nullable(),
});
export type UserRow = z.infer<typeof UserRow>;

const userColumns = sql.fragment`id, email, name, role, is_active, email_verified, created_at, updated_at, deleted_at`;

export async function insertUser(
  db: CommonQueryMethods,
  user: { email: string; passwordHash: string; name: string; role?: UserRole },
): Promise<UserRow> {
  try {
    return await db.one(sql.type(UserRow)`
      INSERT INTO users (email, password_hash, name, role)
      VALUES (${user.email.toLowerCase()}, ${user.passwordHash}, ${user.name}, ${user.role ?? 'user'})
      RETURNING ${userColumns}
    `);
  } catch (error) {
    if (error instanceof UniqueIntegrityConstraintViolationError) {
      throw new ConflictError(`a user with email ${user.email.toLowerCase()} already exists`, {
        email: user.email.toLowerCase(),
      });
    }
    throw error;
  }
}

/** What a login needs: the hash and whether the account may sign in. */
export const UserCredentialsRow = z.object({
  id: z.string().uuid(),
  password_hash: z.string(),
  is_active: z.boolean().nullable(),
});
export type UserCredentialsRow = z.infer<typeof UserCredentialsRow>;

/** The credentials of a live (not deleted) account, by email (case-insensitive). */
export async function findUserCredentials(
  db: CommonQueryMethods,
  email: string,
): Promise<UserCredentialsRow | null> {
  return db.maybeOne(sql.type(UserCredentialsRow)`
    SELECT id, password_hash, is_active FROM users
    WHERE email = ${email.toLowerCase()} AND deleted_at IS NULL
  `);
}

export async function listUsers(db: CommonQueryMethods): Promise<readonly UserRow[]> {
  return db.any(sql.type(UserRow)`
    SELECT ${userColumns} FROM users WHERE deleted_at IS NULL ORDER BY created_at, email
  `);
}

/** Marks the user inactive (idempotent); null when there is no such live user. */
export async function deactivateUser(db: CommonQueryMethods, id: string): Promise<UserRow | null> {
  return db.maybeOne(sql.type(UserRow)`
    UPDATE users SET is_active = false
    WHERE id = ${id} AND deleted_at IS NULL
    RETURNING ${userColumns}
  `);
}

/** The user by id, deleted or not; null when there is none. */
export async function findUserById(db: CommonQueryMethods, id: string): Promise<UserRow | null> {
  return db.maybeOne(sql.type(UserRow)`SELECT ${userColumns} FROM users WHERE id = ${id}`);
}

export async function markEmailVerified(db: CommonQueryMethods, id: string): Promise<void> {
  await db.query(sql.unsafe`UPDATE users SET email_verified = true WHERE id = ${id}`);
}

/** Soft delete (inactive, deleted_at set); null when there is no such live user. */
export async function softDeleteUser(db: CommonQueryMethods, id: string): Promise<UserRow | null> {
  return db.maybeOne(sql.type(UserRow)`
    UPDATE users SET is_active = false, deleted_at = CURRENT_TIMESTAMP
    WHERE id = ${id} AND deleted_at IS NULL
    RETURNING ${userColumns}
  `);
}

/** The address an erased account keeps: unique, undeliverable (RFC 6761 .invalid), no personal data. */
export function tombstoneEmail(id: string): string {
  return `erased-${id}@erased.invalid`;
}

/**
 * Erasure: the personal fields cleared (email replaced by a tombstone, name
 * emptied, the password hash replaced by one no password matches), and the
 * row soft-deleted so ids in the audit trail still resolve.
 */
export async function eraseUserFields(db: CommonQueryMethods, id: string): Promise<UserRow> {
  return db.one(sql.type(UserRow)`
    UPDATE users SET email = ${tombstoneEmail(id)}, name = '', password_hash = '!erased',
      email_verified = false, is_active = false, deleted_at = COALESCE(deleted_at, CURRENT_TIMESTAMP)
    WHERE id = ${id}
    RETURNING ${userColumns}
  `);
}

/** Whether the user's email address is verified (false for no such user). */
export async function isEmailVerified(db: CommonQueryMethods, id: string): Promise<boolean> {
  const row = await db.maybeOne(sql.type(z.object({ email_verified: z.boolean().nullable() }))`
    SELECT email_verified FROM users WHERE id = ${id}
  `);
  return row?.email_verified === true;
}
