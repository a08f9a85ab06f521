// A user's third-party API keys, one per MCP type: store or replace (PUT,
// envelope-encrypted under the user and type, its scopes checked where the
// upstream tells), list (hints and usage only), disable and enable again
// without deleting, delete. Every change writes an api_key_events row.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { keyHint } from '../../core/crypto/envelope.js';
import {
  deleteApiKey,
  findApiKey,
  findKeyUsage,
  keyUsability,
  listKeyUsage,
  setApiKeyActive,
  upsertApiKey,
  type KeyUsageRow,
} from '../../core/db/api-keys.js';
import { findTypeByName, type McpTypeRow } from '../../core/db/mcp-types.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { insertKeyEvent } from '../control/db/key-events.js';
import { asUser, type Transaction } from '../control/db/user-context.js';
import { auditMeta } from '../control/instance/deps.js';
import { checkKeyScopes } from '../control/key-scopes.js';
import { authenticate, userOf } from '../auth.js';
import { requestMeta, type AppContext, type AppDeps, type AppEnv } from '../context.js';
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
    enabled: z.boolean().openapi({
      description: 'False after POST /v1/keys/{type}/disable, until enabled again (or replaced).',
    }),
    active: z
      .boolean()
      .openapi({ description: 'Usable by a new instance now: enabled and not expired.' }),
    active_instances: z
      .number()
      .int()
      .openapi({ description: 'Running instances started with this key.' }),
    last_used: Timestamp.nullable().openapi({
      description: 'When the newest instance made with this key was created; null if none was.',
    }),
  })
  .openapi('ApiKey');

const KeyListSchema = z.object({ keys: z.array(KeySchema) }).openapi('ApiKeyList');

const ScopeCheckSchema = z
  .object({
    checked: z.boolean().openapi({
      description:
        "Whether the upstream reported the key's scopes and they were compared (GitHub classic tokens).",
    }),
    required: z.array(z.string()).openapi({ description: "The type's required_scopes." }),
    granted: z
      .array(z.string())
      .nullable()
      .openapi({ description: 'The scopes the upstream reported, when it did.' }),
    missing: z.array(z.string()),
    reason: z.string().nullable().openapi({
      description:
        'Why the scopes were not checked (the upstream cannot tell, or could not be reached); null when they were.',
    }),
  })
  .openapi('ScopeCheck');

const StoredKeySchema = KeySchema.extend({
  scopes: ScopeCheckSchema,
  warnings: z.array(z.string()).openapi({
    description:
      'What the user should know; the key is stored regardless: missing scopes, a token the upstream refused, an upstream that could not be reached.',
  }),
}).openapi('StoredApiKey');

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

function toKeyView(row: KeyUsageRow): KeyView {
  return {
    type: row.type,
    hint: row.key_hint,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
    expires_at: isoOrNull(row.expires_at),
    enabled: row.is_active === true,
    active: keyUsability(row) === 'usable',
    active_instances: row.active_instances,
    last_used: isoOrNull(row.last_used),
  };
}

function noKey(typeName: string): NotFoundError {
  return new NotFoundError(`no stored key for MCP type "${typeName}"`, { type: typeName });
}

/** The type a key may be stored for; else NotFoundError or ValidationError. */
function checkStorable(type: McpTypeRow | null, typeName: string, key: string): McpTypeRow {
  if (!type || type.is_active !== true)
    throw new NotFoundError(`MCP type "${typeName}" not found`, { type: typeName });
  if (!type.requires_key)
    throw new ValidationError(`MCP type "${typeName}" takes no API key`, { type: typeName });
  // The pattern was checked to compile when the type was registered.
  if (type.key_pattern !== null && !new RegExp(type.key_pattern).test(key))
    throw new ValidationError(
      `key does not look like a ${typeName} key: it must match ${type.key_pattern}`,
      { type: typeName },
    );
  return type;
}

function parseExpiry(expiresAt: string | null | undefined, typeName: string): Date | null {
  const date = expiresAt ? new Date(expiresAt) : null;
  if (date && date.getTime() <= Date.now())
    throw new ValidationError(`expires_at must be in the future, got ${expiresAt}`, {
      type: typeName,
    });
  return date;
}

/** The key's usage row, read in the transaction that changed it. */
async function usageOf(tx: Transaction, userId: string, mcpTypeId: string): Promise<KeyUsageRow> {
  const usage = await findKeyUsage(tx, userId, mcpTypeId);
  if (!usage) throw new Error(`the key of type ${mcpTypeId} vanished within its transaction`);
  return usage;
}

function registerPutKey(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'put',
      path: '/v1/keys/{type}',
      tags: ['keys'],
      summary: 'Store or replace the calling user’s key for an MCP type',
      description:
        "The key must match the type's key_pattern when it has one. It is envelope-encrypted (context: user id and type name) and stored enabled; the answer holds only a hint. Where the upstream reports a key's scopes (GitHub classic tokens: X-OAuth-Scopes of GET /user), they are compared with the type's required_scopes and missing ones are warned about; `scopes.reason` says why a type's were not checked. An upstream that refuses the token, is slow (MINIMCP_SCOPE_CHECK_TIMEOUT_MS) or unreachable is a warning, never a refusal.",
      security: BEARER,
      middleware: [authenticate(deps)],
      request: { params: TypeParam, body: jsonBody(PutKeySchema) },
      responses: {
        200: jsonResponse(StoredKeySchema, 'Stored, with what the scope check found.'),
        ...problems(400, 401, 403, 404, 413, 415, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { type: typeName } = c.req.valid('param');
      const body = c.req.valid('json');
      const type = checkStorable(await findTypeByName(deps.pool, typeName), typeName, body.key);
      const expiresAt = parseExpiry(body.expires_at, typeName);
      const envelope = await deps.cipher.encrypt(body.key, {
        userId: user.userId,
        mcpType: type.name,
      });
      const hint = keyHint(body.key);
      const usage = await asUser(deps.pool, user.userId, async (tx) => {
        const replaced = (await findApiKey(tx, user.userId, type.id)) !== null;
        const row = await upsertApiKey(tx, {
          userId: user.userId,
          mcpTypeId: type.id,
          envelope,
          hint,
          expiresAt,
        });
        await insertKeyEvent(tx, {
          userId: user.userId,
          apiKeyId: row.id,
          mcpTypeId: type.id,
          type: 'stored',
          data: { type: type.name, hint, replaced, expires_at: isoOrNull(expiresAt) },
          ...auditMeta(requestMeta(c, deps)),
        });
        return usageOf(tx, user.userId, type.id);
      });
      c.get('log').info({ userId: user.userId, type: type.name }, 'api key stored');
      const { warnings, ...scopes } = await checkKeyScopes(type, body.key, {
        upstreamOverrides: deps.config.MINIMCP_UPSTREAM_OVERRIDES ?? {},
        timeoutMs: deps.config.MINIMCP_SCOPE_CHECK_TIMEOUT_MS,
        logger: c.get('log'),
      });
      return c.json({ ...toKeyView(usage), scopes, warnings }, 200);
    },
  );
}

function registerListKeys(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/keys',
      tags: ['keys'],
      summary: 'The calling user’s keys (hints and usage, never the key)',
      description:
        "The schema document's key-usage query: each key, enabled or not, with its running instances and its last use.",
      security: BEARER,
      middleware: [authenticate(deps)],
      responses: {
        200: jsonResponse(KeyListSchema, 'One entry per type with a stored key.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const rows = await asUser(deps.pool, user.userId, (tx) => listKeyUsage(tx, user.userId));
      return c.json({ keys: rows.map(toKeyView) }, 200);
    },
  );
}

/** Disables or enables the key: an event when it changed, none when it already was so. */
async function setActive(c: AppContext, deps: AppDeps, typeName: string, active: boolean) {
  const user = userOf(c);
  const usage = await asUser(deps.pool, user.userId, async (tx) => {
    const type = await findTypeByName(tx, typeName);
    if (!type) throw noKey(typeName);
    const changed = await setApiKeyActive(tx, user.userId, type.id, active);
    if (changed)
      await insertKeyEvent(tx, {
        userId: user.userId,
        apiKeyId: changed.id,
        mcpTypeId: type.id,
        type: active ? 'enabled' : 'disabled',
        data: { type: type.name, hint: changed.key_hint },
        ...auditMeta(requestMeta(c, deps)),
      });
    else if (!(await findApiKey(tx, user.userId, type.id))) throw noKey(typeName);
    return usageOf(tx, user.userId, type.id);
  });
  c.get('log').info(
    { userId: user.userId, type: typeName },
    active ? 'api key enabled' : 'api key disabled',
  );
  return toKeyView(usage);
}

function registerSetActive(app: OpenAPIHono<AppEnv>, deps: AppDeps, active: boolean): void {
  const action = active ? 'enable' : 'disable';
  app.openapi(
    createRoute({
      method: 'post',
      path: `/v1/keys/{type}/${action}`,
      tags: ['keys'],
      summary: active
        ? 'Enable the calling user’s key for an MCP type again'
        : 'Disable the calling user’s key for an MCP type, without deleting it',
      description: active
        ? 'The key can start instances again (unless it has expired). Idempotent.'
        : 'No instance starts with a disabled key (create, restore, or an agent taking over a running one answer key-missing, saying so); instances running with it keep running until they stop, expire or their agent restarts. The key stays stored: POST …/enable brings it back. Idempotent.',
      security: BEARER,
      middleware: [authenticate(deps)],
      request: { params: TypeParam },
      responses: {
        200: jsonResponse(KeySchema, active ? 'Enabled.' : 'Disabled.'),
        ...problems(400, 401, 403, 404, 503),
      },
    }),
    async (c) => c.json(await setActive(c, deps, c.req.valid('param').type, active), 200),
  );
}

function registerDeleteKey(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/keys/{type}',
      tags: ['keys'],
      summary: 'Delete the calling user’s key for an MCP type',
      description:
        'The envelope is gone for good; the audit trail keeps its hint. To stop using a key for a while, disable it instead.',
      security: BEARER,
      middleware: [authenticate(deps)],
      request: { params: TypeParam },
      responses: {
        204: { description: 'Deleted.' },
        ...problems(400, 401, 403, 404, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { type: typeName } = c.req.valid('param');
      await asUser(deps.pool, user.userId, async (tx) => {
        const type = await findTypeByName(tx, typeName);
        const deleted = type ? await deleteApiKey(tx, user.userId, type.id) : null;
        if (!type || !deleted) throw noKey(typeName);
        await insertKeyEvent(tx, {
          userId: user.userId,
          apiKeyId: deleted.id,
          mcpTypeId: type.id,
          type: 'deleted',
          data: { type: type.name, hint: deleted.key_hint },
          ...auditMeta(requestMeta(c, deps)),
        });
      });
      c.get('log').info({ userId: user.userId, type: typeName }, 'api key deleted');
      return c.body(null, 204);
    },
  );
}

export function registerKeyRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  registerPutKey(app, deps);
  registerListKeys(app, deps);
  registerSetActive(app, deps, false);
  registerSetActive(app, deps, true);
  registerDeleteKey(app, deps);
}
