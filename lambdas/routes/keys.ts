// A user's third-party API keys, one per MCP type: store or replace (PUT,
// envelope-encrypted under the user and type), list (hints only), delete.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { keyHint } from '../../core/crypto/envelope.js';
import { deleteApiKey, listApiKeySummaries, upsertApiKey } from '../../core/db/api-keys.js';
import { findTypeByName } from '../../core/db/mcp-types.js';
import { asUser } from '../control/db/user-context.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { authenticate, userOf } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import {
  BEARER,
  iso,
  isoOrNull,
  jsonBody,
  jsonResponse,
  problems,
  Timestamp,
  TypeParam,
} from '../schemas.js';

const KeySchema = z
  .object({
    type: z.string().openapi({ example: 'github' }),
    hint: z
      .string()
      .nullable()
      .openapi({ description: 'The last characters of the key.', example: '…a1b2' }),
    created_at: Timestamp,
    updated_at: Timestamp,
    expires_at: Timestamp.nullable(),
    active: z.boolean().openapi({ description: 'Stored, enabled and not expired.' }),
  })
  .openapi('ApiKey');

const KeyListSchema = z.object({ keys: z.array(KeySchema) }).openapi('ApiKeyList');

const PutKeySchema = z
  .strictObject({
    key: z
      .string()
      .min(1)
      .max(8192)
      .openapi({ description: 'The third-party API key. Never returned.' }),
    expires_at: Timestamp.nullable()
      .optional()
      .openapi({ description: 'When the key stops being used (ISO 8601 with offset).' }),
  })
  .openapi('PutApiKey');

type KeyView = z.infer<typeof KeySchema>;

function toKeyView(row: {
  type: string;
  key_hint: string | null;
  is_active: boolean | null;
  created_at: Date;
  updated_at: Date;
  expires_at: Date | null;
}): KeyView {
  return {
    type: row.type,
    hint: row.key_hint,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    expires_at: isoOrNull(row.expires_at),
    active:
      row.is_active === true && (row.expires_at === null || row.expires_at.getTime() > Date.now()),
  };
}

export function registerKeyRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = authenticate(deps);

  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/keys/{type}',
      tags: ['keys'],
      summary: 'Store or replace the calling user’s key for an MCP type',
      description:
        "The key must match the type's key_pattern when it has one. It is envelope-encrypted (context: user id and type name); the answer holds only a hint.",
      security: BEARER,
      middleware: [auth],
      request: { params: TypeParam, body: jsonBody(PutKeySchema) },
      responses: {
        200: jsonResponse(KeySchema, 'Stored.'),
        ...problems(400, 401, 403, 404, 413, 415, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { type: typeName } = c.req.valid('param');
      const body = c.req.valid('json');
      const type = await findTypeByName(deps.pool, typeName);
      if (!type || type.is_active !== true) {
        throw new NotFoundError(`MCP type "${typeName}" not found`, { type: typeName });
      }
      if (!type.requires_key) {
        throw new ValidationError(`MCP type "${typeName}" takes no API key`, { type: typeName });
      }
      // The pattern was checked to compile when the type was registered.
      if (type.key_pattern !== null && !new RegExp(type.key_pattern).test(body.key)) {
        throw new ValidationError(
          `key does not look like a ${typeName} key: it must match ${type.key_pattern}`,
          { type: typeName },
        );
      }
      const expiresAt = body.expires_at ? new Date(body.expires_at) : null;
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw new ValidationError(`expires_at must be in the future, got ${body.expires_at}`, {
          type: typeName,
        });
      }
      const envelope = await deps.cipher.encrypt(body.key, {
        userId: user.userId,
        mcpType: type.name,
      });
      const row = await asUser(deps.pool, user.userId, (tx) =>
        upsertApiKey(tx, {
          userId: user.userId,
          mcpTypeId: type.id,
          envelope,
          hint: keyHint(body.key),
          expiresAt,
        }),
      );
      c.get('log').info({ userId: user.userId, type: type.name }, 'api key stored');
      return c.json(toKeyView({ ...row, type: type.name }), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/keys',
      tags: ['keys'],
      summary: 'The calling user’s keys (hints only, never the key)',
      security: BEARER,
      middleware: [auth],
      responses: {
        200: jsonResponse(KeyListSchema, 'One entry per type with a stored key.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const rows = await asUser(deps.pool, user.userId, (tx) =>
        listApiKeySummaries(tx, user.userId),
      );
      return c.json({ keys: rows.map(toKeyView) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/keys/{type}',
      tags: ['keys'],
      summary: 'Delete the calling user’s key for an MCP type',
      security: BEARER,
      middleware: [auth],
      request: { params: TypeParam },
      responses: {
        204: { description: 'Deleted.' },
        ...problems(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { type: typeName } = c.req.valid('param');
      const deleted = await asUser(deps.pool, user.userId, async (tx) => {
        const type = await findTypeByName(tx, typeName);
        return type ? deleteApiKey(tx, user.userId, type.id) : false;
      });
      if (!deleted) {
        throw new NotFoundError(`no stored key for MCP type "${typeName}"`, { type: typeName });
      }
      c.get('log').info({ userId: user.userId, type: typeName }, 'api key deleted');
      return c.body(null, 204);
    },
  );
}
