// Users: an admin creates (a verification link is mailed), lists and
// deactivates them; anyone asks who they are.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { UserRole } from '../../core/domain.js';
import { revokeAllUserTokens } from '../control/db/user-tokens.js';
import { asSystem } from '../control/db/user-context.js';
import { deactivateUser, insertUser, listUsers, type UserRow } from '../control/db/users.js';
import { NotFoundError } from '../../core/errors.js';
import { hashPassword } from '../control/passwords.js';
import { authenticate, principalOf, requireAdmin } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import { sendVerification } from '../control/email-verification.js';
import { requestMeta } from '../context.js';
import { verificationDeps } from './verification.js';
import {
  BEARER,
  IdParam,
  iso,
  isoOrNull,
  jsonBody,
  jsonResponse,
  problems,
  Timestamp,
} from '../schemas.js';

export const UserSchema = z
  .object({
    id: z.uuid(),
    email: z.string(),
    name: z.string(),
    role: UserRole,
    active: z.boolean(),
    email_verified: z.boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('User');

const UserListSchema = z.object({ users: z.array(UserSchema) }).openapi('UserList');

const CreateUserSchema = z
  .strictObject({
    email: z.email().max(255),
    password: z
      .string()
      .min(12, 'must be at least 12 characters')
      .max(1024)
      .openapi({ description: 'At least 12 characters; stored as an scrypt hash.' }),
    name: z.string().trim().min(1).max(255),
    role: UserRole.default('user'),
  })
  .openapi('CreateUser');

const MeSchema = z
  .object({
    principal: z.enum(['user', 'bootstrap-admin']),
    role: UserRole,
    user: z
      .object({ id: z.uuid(), email: z.string(), name: z.string() })
      .nullable()
      .openapi({ description: 'Null for the bootstrap admin token.' }),
    token: z
      .object({ id: z.uuid(), name: z.string(), expires_at: Timestamp.nullable() })
      .nullable(),
  })
  .openapi('Me');

export function toUser(row: UserRow): z.infer<typeof UserSchema> {
  return {
    id: row.id,
    email: row.email,
    name: row.name,
    role: row.role,
    active: row.is_active === true && row.deleted_at === null,
    email_verified: row.email_verified === true,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

export function registerUserRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin: MiddlewareHandler<AppEnv>[] = [authenticate(deps), requireAdmin];

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/users',
      tags: ['users'],
      summary: 'Create a user (admin)',
      security: BEARER,
      middleware: admin,
      request: { body: jsonBody(CreateUserSchema) },
      responses: {
        201: jsonResponse(UserSchema, 'The new user.'),
        ...problems(400, 401, 403, 409, 413, 415, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const passwordHash = await hashPassword(body.password);
      const row = await insertUser(deps.pool, {
        email: body.email,
        passwordHash,
        name: body.name,
        role: body.role,
      });
      c.get('log').info({ userId: row.id, role: row.role }, 'user created');
      const principal = principalOf(c);
      await sendVerification(
        verificationDeps(deps),
        row,
        principal.kind === 'user'
          ? { kind: 'admin', userId: principal.userId }
          : { kind: 'bootstrap-admin' },
        requestMeta(c, deps),
      ).catch((error: unknown) => {
        // The user exists; a mail that could not go out is asked for again
        // with POST /v1/auth/verify/request, so creation still succeeds.
        const err = error instanceof Error ? { type: error.name, message: error.message } : {};
        c.get('log').error({ userId: row.id, err }, 'verification link not sent');
      });
      return c.json(toUser(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/users',
      tags: ['users'],
      summary: 'List users (admin)',
      security: BEARER,
      middleware: admin,
      responses: {
        200: jsonResponse(UserListSchema, 'Users that are not deleted, oldest first.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const rows = await listUsers(deps.pool);
      return c.json({ users: rows.map(toUser) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/users/{id}/deactivate',
      tags: ['users'],
      summary: 'Deactivate a user and revoke their tokens (admin)',
      security: BEARER,
      middleware: admin,
      request: { params: IdParam },
      responses: {
        200: jsonResponse(UserSchema, 'The user, now inactive.'),
        ...problems(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      // Across users (the admin is not the owner of the tokens): system scope.
      const row = await asSystem(deps.pool, async (tx) => {
        const user = await deactivateUser(tx, id);
        if (user) await revokeAllUserTokens(tx, id);
        return user;
      });
      if (!row) throw new NotFoundError(`user ${id} not found`, { userId: id });
      c.get('log').info({ userId: id }, 'user deactivated');
      return c.json(toUser(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/me',
      tags: ['users'],
      summary: 'Who the bearer token speaks for',
      security: BEARER,
      middleware: [authenticate(deps)],
      responses: {
        200: jsonResponse(MeSchema, 'The calling principal.'),
        ...problems(401, 503),
      },
    }),
    (c) => {
      const principal = principalOf(c);
      if (principal.kind === 'bootstrap-admin') {
        return c.json(
          {
            principal: 'bootstrap-admin' as const,
            role: 'admin' as const,
            user: null,
            token: null,
          },
          200,
        );
      }
      return c.json(
        {
          principal: 'user' as const,
          role: principal.role,
          user: { id: principal.userId, email: principal.email, name: principal.name },
          token: {
            id: principal.tokenId,
            name: principal.tokenName,
            expires_at: isoOrNull(principal.tokenExpiresAt),
          },
        },
        200,
      );
    },
  );
}
