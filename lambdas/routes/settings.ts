// System settings (admin): list them, change one. Each key's value is checked
// by its own schema (core/db/settings.ts); a change writes an admin_events row
// naming the admin in the same transaction. Readers pick changes up without a
// restart: the API reads settings per request, agents every
// MINIMCP_SETTINGS_REFRESH_SECONDS.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  getSettings,
  isSettingKey,
  listSettingRows,
  lockSettings,
  SETTING_DEFAULTS,
  SETTING_SCHEMAS,
  writeSetting,
  type SettingKey,
} from '../../core/db/settings.js';
import { NotFoundError, ValidationError } from '../../core/errors.js';
import { authenticate, principalOf, requireAdmin } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import {
  insertAdminEvent,
  latestAdminEvents,
  type AdminActor,
  type AdminEventRow,
} from '../control/db/admin-events.js';
import { asSystem } from '../control/db/user-context.js';
import { BEARER, isoOrNull, jsonBody, jsonResponse, problems, Timestamp } from '../schemas.js';

/** What each key accepts, in words: the error message and the OpenAPI description say it. */
const RULES: Record<SettingKey, string> = {
  'encryption.algorithm': 'the string "aes-256-gcm" (the only algorithm implemented)',
  'mcp.default_duration_minutes': 'an integer from 1 to 525600',
  'mcp.max_instances_per_user': 'an integer from 0 to 10000',
  'cleanup.retention_days': 'an integer from 1 to 3650',
  'port.range_start': 'an integer from 3001 to 65535, not above port.range_end',
  'port.range_end': 'an integer from 3001 to 65535, not below port.range_start',
  'process.max_memory_mb': 'an integer from 16 to 1048576',
  'process.max_cpu_percent': 'a number above 0 and up to 6400 (100 = one core)',
  'users.require_verified_email':
    'true or false: only users with a verified email may create instances',
};

const subjectOf = (key: SettingKey): string => `setting:${key}`;

const SettingSchema = z
  .object({
    key: z.string(),
    value: z.unknown().openapi({ description: 'A JSON value; see `accepts`.' }),
    description: z.string().nullable(),
    accepts: z.string().openapi({ description: 'The values this key accepts.' }),
    updated_at: Timestamp.nullable().openapi({ description: 'Null: not stored, the default.' }),
    last_change: z
      .object({
        at: Timestamp,
        by: z.object({ kind: z.enum(['user', 'bootstrap-admin']), user_id: z.uuid().nullable() }),
        previous: z.unknown(),
      })
      .nullable()
      .openapi({ description: 'The last change through the API (admin_events), if any.' }),
  })
  .openapi('Setting');

const SettingListSchema = z.object({ settings: z.array(SettingSchema) }).openapi('SettingList');

const SettingKeyParam = z.object({
  key: z
    .string()
    .max(100)
    .openapi({ param: { name: 'key', in: 'path' }, example: 'cleanup.retention_days' }),
});

const PatchSettingSchema = z
  .strictObject({ value: z.unknown().openapi({ example: 14 }) })
  .refine((body) => body.value !== undefined, { message: 'value is required', path: ['value'] })
  .openapi('PatchSetting');

type SettingView = z.infer<typeof SettingSchema>;

function toView(
  key: SettingKey,
  row: { value: unknown; description: string | null; updated_at: Date | null } | undefined,
  change: AdminEventRow | undefined,
): SettingView {
  return {
    key,
    value: row ? row.value : SETTING_DEFAULTS[key],
    description: row?.description ?? null,
    accepts: RULES[key],
    updated_at: isoOrNull(row?.updated_at ?? null),
    last_change: change
      ? {
          at: change.created_at.toISOString(),
          by: { kind: change.actor_kind, user_id: change.actor_user_id },
          previous: change.event_data.previous ?? null,
        }
      : null,
  };
}

/** The value checked by the key's schema; a ValidationError that says what the key accepts. */
function parseValue(key: SettingKey, value: unknown): unknown {
  const parsed = SETTING_SCHEMAS[key].safeParse(value);
  if (!parsed.success) {
    const shown = JSON.stringify(value)?.slice(0, 80) ?? String(value);
    throw new ValidationError(`${key} must be ${RULES[key]}, got ${shown}`, { key });
  }
  return parsed.data;
}

/** The port range stays a range: start ≤ end, checked against the other key's current value. */
function checkRange(key: SettingKey, value: unknown, current: Record<SettingKey, unknown>): void {
  const start = key === 'port.range_start' ? value : current['port.range_start'];
  const end = key === 'port.range_end' ? value : current['port.range_end'];
  if (typeof start === 'number' && typeof end === 'number' && start > end) {
    throw new ValidationError(
      `${key} must be ${RULES[key]}: port.range_start ${start} > port.range_end ${end}`,
      { key },
    );
  }
}

export function registerSettingRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const admin: MiddlewareHandler<AppEnv>[] = [authenticate(deps), requireAdmin];
  const keys = Object.keys(SETTING_SCHEMAS) as SettingKey[];

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/settings',
      tags: ['settings'],
      summary: 'System settings, with what each accepts and its last change (admin)',
      security: BEARER,
      middleware: admin,
      responses: {
        200: jsonResponse(SettingListSchema, 'Every known setting, by key.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const { rows, changes } = await asSystem(deps.pool, async (tx) => ({
        rows: new Map((await listSettingRows(tx)).map((row) => [row.key, row])),
        changes: await latestAdminEvents(tx, keys.map(subjectOf)),
      }));
      const settings = keys.map((key) => toView(key, rows.get(key), changes.get(subjectOf(key))));
      return c.json({ settings }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/settings/{key}',
      tags: ['settings'],
      summary: 'Change one system setting; applied without a restart (admin)',
      security: BEARER,
      middleware: admin,
      request: { params: SettingKeyParam, body: jsonBody(PatchSettingSchema) },
      responses: {
        200: jsonResponse(SettingSchema, 'The setting after the change.'),
        ...problems(400, 401, 403, 404, 413, 415, 503),
      },
    }),
    async (c) => {
      const { key } = c.req.valid('param');
      if (!isSettingKey(key)) {
        throw new NotFoundError(`There is no setting "${key}"; known: ${keys.join(', ')}.`, {
          key,
        });
      }
      const value = parseValue(key, c.req.valid('json').value);
      const principal = principalOf(c);
      const actor: AdminActor =
        principal.kind === 'user'
          ? { kind: 'user', userId: principal.userId }
          : { kind: 'bootstrap-admin' };
      const view = await asSystem(deps.pool, async (tx) => {
        await lockSettings(tx);
        checkRange(key, value, await getSettings(tx));
        const { row, previous } = await writeSetting(tx, key, value);
        const event = await insertAdminEvent(tx, {
          actor,
          type: 'setting_changed',
          subject: subjectOf(key),
          data: { key, previous, value },
          ipAddress: deps.clientIp(c) ?? null,
          userAgent: c.req.header('user-agent') ?? null,
        });
        return toView(key, row, event);
      });
      c.get('log').info({ key, actor: actor.kind }, 'system setting changed');
      return c.json(view, 200);
    },
  );
}
