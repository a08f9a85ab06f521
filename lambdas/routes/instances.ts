// Instances: create (placement + gRPC start), list, get, delete, extend,
// restore, rotate the access token, and read their logs and events. The
// domain logic is lambdas/control/instance-service.ts; this module is HTTP only.
import { createRoute, z, type OpenAPIHono, type RouteConfig } from '@hono/zod-openapi';
import { INSTANCE_STATUSES, LOG_LEVELS } from '../../core/domain.js';
import { InstanceStartError } from '../../core/errors.js';
import type {
  EventView,
  InstanceView,
  LogView,
  StartOutcome,
} from '../control/instance-service.js';
import { authenticate, userOf } from '../auth.js';
import { requestMeta, type AppDeps, type AppEnv } from '../context.js';
import {
  BEARER,
  IdParam,
  iso,
  isoOrNull,
  jsonBody,
  jsonResponse,
  problems,
  Timestamp,
  TypeName,
} from '../schemas.js';

const JsonObjectSchema = z.record(z.string(), z.unknown());

const InstanceSchema = z
  .object({
    id: z.uuid(),
    type: z.string().openapi({ example: 'demo' }),
    status: z.enum(INSTANCE_STATUSES),
    access_url: z.string().openapi({ example: 'http://127.0.0.1:3001/mcp' }),
    token_prefix: z
      .string()
      .openapi({ description: 'First characters of the access token (not secret).' }),
    node: z.string().nullable().openapi({ description: 'Name of the node it runs on.' }),
    port: z.number().int().nullable(),
    expires_at: Timestamp,
    last_accessed: Timestamp.nullable(),
    config: JsonObjectSchema,
    stats: JsonObjectSchema.openapi({
      description: 'CPU, memory, requests and bytes, sampled by the agent.',
    }),
    error_message: z.string().nullable(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('Instance');

const InstanceWithTokenSchema = InstanceSchema.extend({
  access_token: z
    .string()
    .openapi({ description: 'Bearer token for access_url. Shown once, here.' }),
}).openapi('InstanceWithToken');

const InstanceListSchema = z
  .object({ instances: z.array(InstanceSchema), next_cursor: z.string().nullable() })
  .openapi('InstanceList');

const CreateInstanceSchema = z
  .strictObject({
    type: TypeName,
    duration_minutes: z.number().int().min(1).max(525_600).optional().openapi({
      description: "Lifetime; default mcp.default_duration_minutes, at most the type's maximum.",
    }),
    config: JsonObjectSchema.optional().openapi({
      description: "Overrides of the type's config_template.",
    }),
  })
  .openapi('CreateInstance');

const ExtendSchema = z
  .strictObject({ minutes: z.number().int().min(1).max(525_600) })
  .openapi('ExtendInstance');

const Limit = z.coerce.number().int().min(1).max(100).default(50);
const Cursor = z.string().min(1).max(512).optional();

const ListQuery = z.object({
  status: z.enum(INSTANCE_STATUSES).optional(),
  type: TypeName.optional(),
  cursor: Cursor,
  limit: Limit,
});

const LogsQuery = z.object({
  level: z.enum(LOG_LEVELS).optional(),
  since: Timestamp.optional(),
  until: Timestamp.optional(),
  q: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .openapi({ description: 'Case-insensitive text in the message.' }),
  cursor: Cursor,
  limit: Limit,
});

const EventsQuery = z.object({ cursor: Cursor, limit: Limit });

const LogSchema = z
  .object({
    id: z.uuid(),
    timestamp: Timestamp,
    level: z.enum(LOG_LEVELS),
    source: z.string().nullable(),
    message: z.string(),
    metadata: JsonObjectSchema,
  })
  .openapi('LogLine');

const EventSchema = z
  .object({
    id: z.uuid(),
    type: z.string(),
    data: JsonObjectSchema,
    ip_address: z.string().nullable(),
    user_agent: z.string().nullable(),
    created_at: Timestamp,
  })
  .openapi('InstanceEvent');

type InstanceBody = z.infer<typeof InstanceSchema>;

function toBody(view: InstanceView): InstanceBody {
  return {
    id: view.id,
    type: view.type,
    status: view.status,
    access_url: view.accessUrl,
    token_prefix: view.tokenPrefix,
    node: view.nodeName,
    port: view.port,
    expires_at: iso(view.expiresAt),
    last_accessed: isoOrNull(view.lastAccessed),
    config: view.config,
    stats: view.stats,
    error_message: view.errorMessage,
    created_at: iso(view.createdAt),
    updated_at: iso(view.updatedAt),
  };
}

const toLogBody = (log: LogView) => ({
  id: log.id,
  timestamp: iso(log.timestamp),
  level: log.level,
  source: log.source,
  message: log.message,
  metadata: log.metadata,
});

const toEventBody = (event: EventView) => ({
  id: event.id,
  type: event.type,
  data: event.data,
  ip_address: event.ipAddress,
  user_agent: event.userAgent,
  created_at: iso(event.createdAt),
});

/** An agent that tried and failed: 502 with its reason; the instance stays in `error`. */
function failIfError(outcome: StartOutcome): void {
  if (outcome.status === 'error') {
    throw new InstanceStartError(`the instance could not start: ${outcome.error.message}`, {
      instanceId: outcome.instance.id,
      agentCode: outcome.error.code,
    });
  }
}

const WITH_ID = { params: IdParam };

// The routes as OpenAPI declares them; registerInstanceRoutes adds authentication and handlers.

const CREATE = createRoute({
  method: 'post',
  path: '/v1/instances',
  tags: ['instances'],
  summary: 'Create an instance of an MCP type',
  description:
    'Places it on a node, claims a port and asks the node agent to start it. 201 when it is running; 202 when the agent is still starting it (poll GET). The access token is in this answer only.',
  security: BEARER,
  request: { body: jsonBody(CreateInstanceSchema) },
  responses: {
    201: jsonResponse(InstanceWithTokenSchema, 'Running.'),
    202: jsonResponse(InstanceWithTokenSchema, 'Accepted; the agent is still starting it.'),
    ...problems(400, 401, 403, 409, 413, 415, 429, 502, 503),
  },
});

const LIST = createRoute({
  method: 'get',
  path: '/v1/instances',
  tags: ['instances'],
  summary: 'The calling user’s instances, newest first',
  security: BEARER,
  request: { query: ListQuery },
  responses: {
    200: jsonResponse(InstanceListSchema, 'A page.'),
    ...problems(400, 401, 403, 503),
  },
});

const GET = createRoute({
  method: 'get',
  path: '/v1/instances/{id}',
  tags: ['instances'],
  summary: 'One instance (never its token)',
  security: BEARER,
  request: WITH_ID,
  responses: {
    200: jsonResponse(InstanceSchema, 'The instance.'),
    ...problems(400, 401, 403, 404, 503),
  },
});

const DELETE = createRoute({
  method: 'delete',
  path: '/v1/instances/{id}',
  tags: ['instances'],
  summary: 'Stop the instance now and delete it (its logs and events stay)',
  security: BEARER,
  request: WITH_ID,
  responses: { 204: { description: 'Deleted.' }, ...problems(400, 401, 403, 404, 503) },
});

const EXTEND = createRoute({
  method: 'post',
  path: '/v1/instances/{id}/extend',
  tags: ['instances'],
  summary: "Extend a running or pending instance, within its type's maximum",
  security: BEARER,
  request: { ...WITH_ID, body: jsonBody(ExtendSchema) },
  responses: {
    200: jsonResponse(InstanceSchema, 'Extended.'),
    ...problems(400, 401, 403, 404, 409, 413, 415, 503),
  },
});

const RESTORE = createRoute({
  method: 'post',
  path: '/v1/instances/{id}/restore',
  tags: ['instances'],
  summary:
    'Restore an expired, disconnected or failed instance (same id and token, maybe a new node and port)',
  security: BEARER,
  request: WITH_ID,
  responses: {
    201: jsonResponse(InstanceSchema, 'Running again.'),
    202: jsonResponse(InstanceSchema, 'Accepted; the agent is still starting it.'),
    ...problems(400, 401, 403, 404, 409, 429, 502, 503),
  },
});

const ROTATE_TOKEN = createRoute({
  method: 'post',
  path: '/v1/instances/{id}/token',
  tags: ['instances'],
  summary: 'Rotate the access token (the old one stops working)',
  security: BEARER,
  request: WITH_ID,
  responses: {
    200: jsonResponse(InstanceWithTokenSchema, 'The new token, shown once.'),
    ...problems(400, 401, 403, 404, 409, 503),
  },
});

const LOGS = createRoute({
  method: 'get',
  path: '/v1/instances/{id}/logs',
  tags: ['instances'],
  summary: 'Log lines of an instance, newest first',
  security: BEARER,
  request: { ...WITH_ID, query: LogsQuery },
  responses: {
    200: jsonResponse(
      z.object({ logs: z.array(LogSchema), next_cursor: z.string().nullable() }).openapi('LogPage'),
      'A page.',
    ),
    ...problems(400, 401, 403, 404, 503),
  },
});

const EVENTS = createRoute({
  method: 'get',
  path: '/v1/instances/{id}/events',
  tags: ['instances'],
  summary: 'The audit trail of an instance, newest first',
  security: BEARER,
  request: { ...WITH_ID, query: EventsQuery },
  responses: {
    200: jsonResponse(
      z
        .object({ events: z.array(EventSchema), next_cursor: z.string().nullable() })
        .openapi('EventPage'),
      'A page.',
    ),
    ...problems(400, 401, 403, 404, 503),
  },
});

export function registerInstanceRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { instances } = deps;
  const auth = authenticate(deps);
  // Every instance route is the calling user's: authenticated before its validators run.
  const withAuth = <R extends RouteConfig>(route: R) => ({ ...route, middleware: [auth] });

  app.openapi(withAuth(CREATE), async (c) => {
    const user = userOf(c);
    const body = c.req.valid('json');
    const outcome = await instances.create({
      userId: user.userId,
      type: body.type,
      ...(body.duration_minutes !== undefined ? { durationMinutes: body.duration_minutes } : {}),
      ...(body.config !== undefined ? { config: body.config } : {}),
      ...requestMeta(c, deps),
    });
    failIfError(outcome);
    c.get('log').info(
      { userId: user.userId, instanceId: outcome.instance.id, status: outcome.status },
      'instance created',
    );
    const status = outcome.status === 'running' ? 201 : 202;
    c.header('Location', `/v1/instances/${outcome.instance.id}`);
    return c.json({ ...toBody(outcome.instance), access_token: outcome.accessToken }, status);
  });

  app.openapi(withAuth(LIST), async (c) => {
    const user = userOf(c);
    const query = c.req.valid('query');
    const page = await instances.list(user.userId, {
      limit: query.limit,
      ...(query.status ? { status: query.status } : {}),
      ...(query.type ? { type: query.type } : {}),
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return c.json({ instances: page.items.map(toBody), next_cursor: page.nextCursor }, 200);
  });

  app.openapi(withAuth(GET), async (c) => {
    const user = userOf(c);
    return c.json(toBody(await instances.get(user.userId, c.req.valid('param').id)), 200);
  });

  app.openapi(withAuth(DELETE), async (c) => {
    const user = userOf(c);
    const { id } = c.req.valid('param');
    await instances.delete(user.userId, id, requestMeta(c, deps));
    c.get('log').info({ userId: user.userId, instanceId: id }, 'instance deleted');
    return c.body(null, 204);
  });

  app.openapi(withAuth(EXTEND), async (c) => {
    const user = userOf(c);
    const view = await instances.extend(
      user.userId,
      c.req.valid('param').id,
      c.req.valid('json'),
      requestMeta(c, deps),
    );
    return c.json(toBody(view), 200);
  });

  app.openapi(withAuth(RESTORE), async (c) => {
    const user = userOf(c);
    const outcome = await instances.restore(
      user.userId,
      c.req.valid('param').id,
      requestMeta(c, deps),
    );
    failIfError(outcome);
    return c.json(toBody(outcome.instance), outcome.status === 'running' ? 201 : 202);
  });

  app.openapi(withAuth(ROTATE_TOKEN), async (c) => {
    const user = userOf(c);
    const rotated = await instances.rotateToken(
      user.userId,
      c.req.valid('param').id,
      requestMeta(c, deps),
    );
    return c.json({ ...toBody(rotated.instance), access_token: rotated.accessToken }, 200);
  });

  app.openapi(withAuth(LOGS), async (c) => {
    const user = userOf(c);
    const query = c.req.valid('query');
    const page = await instances.logs(user.userId, c.req.valid('param').id, {
      limit: query.limit,
      ...(query.level ? { level: query.level } : {}),
      ...(query.since ? { since: new Date(query.since) } : {}),
      ...(query.until ? { until: new Date(query.until) } : {}),
      ...(query.q ? { text: query.q } : {}),
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return c.json({ logs: page.items.map(toLogBody), next_cursor: page.nextCursor }, 200);
  });

  app.openapi(withAuth(EVENTS), async (c) => {
    const user = userOf(c);
    const query = c.req.valid('query');
    const page = await instances.events(user.userId, c.req.valid('param').id, {
      limit: query.limit,
      ...(query.cursor ? { cursor: query.cursor } : {}),
    });
    return c.json({ events: page.items.map(toEventBody), next_cursor: page.nextCursor }, 200);
  });
}
