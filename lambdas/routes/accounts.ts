// The end of an account over HTTP: an admin deletes a user (soft), and a user
// exports or erases their own data (the schema document's GDPR note).
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import { ValidationError } from '../../core/errors.js';
import { EXPORT_LIMITS, exportAccount } from '../control/account-export.js';
import { deleteUserAccount, eraseOwnAccount } from '../control/account-lifecycle.js';
import type { AccountActor } from '../control/db/account-events.js';
import { authenticate, principalOf, requireAdmin, userOf } from '../auth.js';
import type { AppContext, AppDeps, AppEnv } from '../context.js';
import { BEARER, IdParam, jsonBody, jsonResponse, problems } from '../schemas.js';
import { requestMeta } from '../context.js';
import { toUser, UserSchema } from './users.js';

const DeletedUserSchema = z
  .object({
    user: UserSchema,
    instances_stopped: z.number().int().openapi({
      description: 'Instances this call deleted (and asked their agents to stop).',
    }),
  })
  .openapi('DeletedUser');

const EraseRequestSchema = z
  .strictObject({
    confirm: z.string().max(255).openapi({
      description: 'Your account’s email address, to confirm the erasure.',
      example: 'ada@example.test',
    }),
  })
  .openapi('EraseAccount');

const ErasedSchema = z
  .object({
    erased: z.literal(true),
    instances_stopped: z.number().int(),
    keys_deleted: z.number().int(),
    tokens_deleted: z.number().int(),
    logs_deleted: z.number().int(),
  })
  .openapi('AccountErased');

const Section = z.array(z.record(z.string(), z.unknown()));
const ExportSchema = z
  .object({
    exported_at: z.string(),
    account: z.record(z.string(), z.unknown()),
    keys: Section.openapi({ description: 'Metadata only: type, hint, dates; never the key.' }),
    tokens: Section.openapi({ description: 'API tokens: name, prefix, dates; never the token.' }),
    instances: Section,
    events: Section,
    account_events: Section,
    logs: Section.openapi({ description: `Log lines of the last ${EXPORT_LIMITS.logDays} days.` }),
    limits: z.record(z.string(), z.number()),
    truncated: z.record(z.string(), z.boolean()),
  })
  .openapi('AccountExport');

function actorOf(c: AppContext): AccountActor {
  const principal = principalOf(c);
  return principal.kind === 'bootstrap-admin'
    ? { kind: 'bootstrap-admin' }
    : { kind: principal.role === 'admin' ? 'admin' : 'user', userId: principal.userId };
}

export function registerAccountRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const accountDeps = { pool: deps.pool, instances: deps.instances, logger: deps.logger };

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/users/{id}',
      tags: ['users'],
      summary: 'Delete a user (admin): soft delete, instances stopped, tokens and keys revoked',
      description:
        'The row stays with deleted_at set; the user cannot log in or use a token. Repeating the call stops anything still running and answers the same.',
      security: BEARER,
      middleware: [authenticate(deps), requireAdmin],
      request: { params: IdParam },
      responses: {
        200: jsonResponse(DeletedUserSchema, 'The user, now deleted.'),
        ...problems(400, 401, 403, 404, 409, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const result = await deleteUserAccount(accountDeps, id, actorOf(c), requestMeta(c, deps));
      return c.json({ user: toUser(result.user), instances_stopped: result.instancesStopped }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/me/export',
      tags: ['users'],
      summary: 'Export your data as JSON',
      description: `Account, keys’ and tokens’ metadata (no secret), instances, their events, account events, and recent logs. Bounded: ${JSON.stringify(EXPORT_LIMITS)}; \`truncated\` says where a bound cut.`,
      security: BEARER,
      middleware: [authenticate(deps)],
      responses: {
        200: jsonResponse(ExportSchema, 'Your data.'),
        ...problems(401, 403, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const document = await exportAccount(deps.pool, user.userId);
      c.get('log').info({ userId: user.userId }, 'account exported');
      c.header('content-disposition', 'attachment; filename="minimcp-export.json"');
      return c.json(document, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/me',
      tags: ['users'],
      summary: 'Erase your account',
      description:
        'Confirm with your email address. Instances stopped; keys, tokens and logs deleted; instance configs and event addresses cleared; email replaced by a tombstone, name emptied; the account can never log in again. Ids and event types stay for the audit trail.',
      security: BEARER,
      middleware: [authenticate(deps)],
      request: { body: jsonBody(EraseRequestSchema) },
      responses: {
        200: jsonResponse(ErasedSchema, 'What was erased.'),
        ...problems(400, 401, 403, 413, 415, 503),
      },
    }),
    async (c) => {
      const user = userOf(c);
      const { confirm } = c.req.valid('json');
      if (confirm.trim().toLowerCase() !== user.email.toLowerCase())
        throw new ValidationError(
          'confirm must be your account’s email address exactly: nothing was erased',
        );
      const summary = await eraseOwnAccount(accountDeps, user.userId, requestMeta(c, deps));
      return c.json(
        {
          erased: true as const,
          instances_stopped: summary.instancesStopped,
          keys_deleted: summary.keysDeleted,
          tokens_deleted: summary.tokensDeleted,
          logs_deleted: summary.logsDeleted,
        },
        200,
      );
    },
  );
}
