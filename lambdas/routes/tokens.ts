// A user's API tokens: mint another (POST), list (GET), revoke (DELETE).
// Only hashes are stored; the plaintext is in the creation answer only.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { CommonQueryMethods } from 'slonik';
import { insertUserToken, listUserTokens, revokeUserToken } from '../control/db/user-tokens.js';
import { asUser } from '../control/db/user-context.js';
import { NotFoundError } from '../../core/errors.js';
import { issueToken } from '../../core/tokens.js';
import { authenticate, userOf } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
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

export const TokenName = z.string().trim().min(1).max(100).openapi({ example: 'laptop' });
export const TokenLifetime = z
  .number()
  .int()
  .min(1)
  .max(365)
  .openapi({ description: 'Days until the token expires (default 90).', example: 30 });

const DEFAULT_LIFETIME_DAYS = 90;

export const IssuedTokenSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    token: z.string().openapi({ description: 'The bearer token. Shown only in this answer.' }),
    token_prefix: z.string(),
    created_at: Timestamp,
    expires_at: Timestamp.nullable(),
  })
  .openapi('IssuedToken');
export type IssuedToken = z.infer<typeof IssuedTokenSchema>;

const TokenSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    token_prefix: z.string(),
    created_at: Timestamp,
    last_used_at: Timestamp.nullable().openapi({ description: 'Updated at most once a minute.' }),
    expires_at: Timestamp.nullable(),
    expired: z.boolean(),
  })
  .openapi('Token');

const TokenListSchema = z.object({ tokens: z.array(TokenSchema) }).openapi('TokenList');

const CreateTokenSchema = z
  .strictObject({ name: TokenName, expires_in_days: TokenLifetime.optional() })
  .openapi('CreateToken');

/** Mints a token for the user; run it inside asUser (row-level security). */
export async function issueUserToken(
  tx: CommonQueryMethods,
  userId: string,
  name: string,
  lifetimeDays: number = DEFAULT_LIFETIME_DAYS,
): Promise<IssuedToken> {
  const issued = issueToken('user');
  const row = await insertUserToken(tx, {
    userId,
    name,
    hash: issued.hash,
    prefix: issued.displayPrefix,
    expiresAt: new Date(Date.now() + lifetimeDays * 86_400_000),
  });
  return {
    id: row.id,
    name: row.name,
    token: issued.token,
    token_prefix: row.token_prefix,
    created_at: iso(row.created_at),
    expires_at: isoOrNull(row.expires_at),
  };
}

export function registerTokenRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = authenticate(deps);

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/tokens',
      tags: ['tokens'],
      summary: 'Mint another API token for the calling user',
      security: BEARER,
      middleware: [auth],
      request: { body: jsonBody(CreateTokenSchema) },
      responses: {
        201: jsonResponse(IssuedTokenSchema, 'The new token, shown once.'),
        ...problems(400, 401, 403, 413, 415, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const body = c.req.valid('json');
      const issued = await asUser(deps.pool, user.userId, (tx) =>
        issueUserToken(tx, user.userId, body.name, body.expires_in_days),
      );
      return c.json(issued, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/tokens',
      tags: ['tokens'],
      summary: "The calling user's tokens that are not revoked",
      security: BEARER,
      middleware: [auth],
      responses: {
        200: jsonResponse(TokenListSchema, 'Tokens, newest first; never the token itself.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const rows = await asUser(deps.pool, user.userId, (tx) => listUserTokens(tx, user.userId));
      const now = Date.now();
      return c.json(
        {
          tokens: rows.map((row) => ({
            id: row.id,
            name: row.name,
            token_prefix: row.token_prefix,
            created_at: iso(row.created_at),
            last_used_at: isoOrNull(row.last_used_at),
            expires_at: isoOrNull(row.expires_at),
            expired: row.expires_at !== null && row.expires_at.getTime() <= now,
          })),
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/tokens/{id}',
      tags: ['tokens'],
      summary: 'Revoke one of the calling user’s tokens',
      security: BEARER,
      middleware: [auth],
      request: { params: IdParam },
      responses: {
        204: { description: 'Revoked (or already revoked).' },
        ...problems(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { id } = c.req.valid('param');
      const revoked = await asUser(deps.pool, user.userId, (tx) =>
        revokeUserToken(tx, user.userId, id),
      );
      if (!revoked) throw new NotFoundError(`token ${id} not found`, { tokenId: id });
      return c.body(null, 204);
    },
  );
}
