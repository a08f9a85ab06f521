// users: accounts that own keys and instances.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { UserRole } from '../domain.js';

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
  return db.one(sql.type(UserRow)`
    INSERT INTO users (email, password_hash, name, role)
    VALUES (${user.email.toLowerCase()}, ${user.passwordHash}, ${user.name}, ${user.role ?? 'user'})
    RETURNING ${userColumns}
  `);
}

export async function findUser(db: CommonQueryMethods, id: string): Promise<UserRow | null> {
  return db.maybeOne(
    sql.type(UserRow)`SELECT ${userColumns} FROM users WHERE id = ${id} AND deleted_at IS NULL`,
  );
}
