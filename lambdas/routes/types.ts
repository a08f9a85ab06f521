// MCP types: anyone lists and reads the public fields; an admin registers any
// stdio MCP server command (POST) and changes it (PATCH). The command, its
// arguments and the env mapping stay out of the public view.
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import {
  findTypeByName,
  insertType,
  listTypes,
  updateType,
  type McpTypeFields,
  type McpTypeRow,
} from '../../core/db/mcp-types.js';
import { NotFoundError } from '../../core/errors.js';
import { authenticate, principalOf, requireAdmin } from '../auth.js';
import type { AppDeps, AppEnv } from '../context.js';
import {
  BEARER,
  iso,
  jsonBody,
  jsonResponse,
  NameParam,
  problems,
  Timestamp,
  TypeName,
} from '../schemas.js';

const JsonObjectSchema = z.record(z.string(), z.unknown());

const ResourceLimitsSchema = z
  .strictObject({
    cpu: z
      .string()
      .regex(/^\d{1,3}(\.\d{1,3})?$/, 'must be a number of CPUs such as "0.5"')
      .optional(),
    memory: z
      .string()
      .regex(/^\d{1,6}[kmg]?$/i, 'must be a size such as "512m"')
      .optional(),
  })
  .openapi('ResourceLimits');

const PublicTypeSchema = z
  .object({
    name: z.string(),
    display_name: z.string(),
    description: z.string().nullable(),
    icon_url: z.string().nullable(),
    requires_key: z.boolean(),
    key_pattern: z.string().nullable(),
    config_template: JsonObjectSchema,
    config_schema: JsonObjectSchema.nullable(),
    required_scopes: z.array(z.string()),
    resource_limits: JsonObjectSchema.nullable(),
    max_duration_minutes: z.number().int().nullable(),
    is_active: z.boolean(),
    created_at: Timestamp,
    updated_at: Timestamp,
  })
  .openapi('McpType');

const AdminTypeSchema = PublicTypeSchema.extend({
  server_script: z.string().nullable(),
  command: z.string().nullable(),
  args: z.array(z.string()),
  env_mapping: z.record(z.string(), z.string()),
}).openapi('McpTypeAdmin');

const TypeListSchema = z.object({ types: z.array(PublicTypeSchema) }).openapi('McpTypeList');

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    // A SyntaxError is the answer here, not a failure.
    return false;
  }
}

const EnvName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name');

/** The registrable fields, as the API spells them. */
const typeFields = {
  display_name: z.string().trim().min(1).max(100),
  description: z.string().max(2000).nullable(),
  icon_url: z.url().max(500).nullable(),
  command: z
    .string()
    .min(1)
    .max(500)
    .openapi({ description: 'Executable of a stdio MCP server, e.g. "npx" or "/usr/bin/node".' }),
  args: z.array(z.string().max(4096)).max(100),
  env_mapping: z
    .record(EnvName, z.string().max(4096))
    .refine((value) => Object.keys(value).length <= 100, 'must have at most 100 variables')
    .openapi({
      description:
        'Environment of the child; "{{key}}" in a value is replaced by the decrypted API key.',
      example: { GITHUB_TOKEN: '{{key}}' },
    }),
  requires_key: z.boolean(),
  key_pattern: z
    .string()
    .min(1)
    .max(500)
    .refine(compiles, 'must be a valid regular expression')
    .nullable()
    .openapi({ description: 'Regular expression a stored key must match.' }),
  config_template: JsonObjectSchema,
  config_schema: JsonObjectSchema.nullable(),
  required_scopes: z.array(z.string().min(1).max(200)).max(100),
  resource_limits: ResourceLimitsSchema,
  max_duration_minutes: z.number().int().min(1).max(525600),
  is_active: z.boolean(),
};

const CreateTypeSchema = z
  .strictObject({
    name: TypeName,
    display_name: typeFields.display_name,
    command: typeFields.command,
    description: typeFields.description.optional(),
    icon_url: typeFields.icon_url.optional(),
    args: typeFields.args.default([]),
    env_mapping: typeFields.env_mapping.default({}),
    requires_key: typeFields.requires_key.default(true),
    key_pattern: typeFields.key_pattern.optional(),
    config_template: typeFields.config_template.default({}),
    config_schema: typeFields.config_schema.optional(),
    required_scopes: typeFields.required_scopes.default([]),
    resource_limits: typeFields.resource_limits.default({ cpu: '0.5', memory: '512m' }),
    max_duration_minutes: typeFields.max_duration_minutes.default(60),
    is_active: typeFields.is_active.default(true),
  })
  .openapi('CreateMcpType');

const PatchTypeSchema = z
  .strictObject({
    display_name: typeFields.display_name.optional(),
    description: typeFields.description.optional(),
    icon_url: typeFields.icon_url.optional(),
    command: typeFields.command.optional(),
    args: typeFields.args.optional(),
    env_mapping: typeFields.env_mapping.optional(),
    requires_key: typeFields.requires_key.optional(),
    key_pattern: typeFields.key_pattern.optional(),
    config_template: typeFields.config_template.optional(),
    config_schema: typeFields.config_schema.optional(),
    required_scopes: typeFields.required_scopes.optional(),
    resource_limits: typeFields.resource_limits.optional(),
    max_duration_minutes: typeFields.max_duration_minutes.optional(),
    is_active: typeFields.is_active.optional(),
  })
  .refine((patch) => Object.keys(patch).length > 0, 'must change at least one field')
  .openapi('PatchMcpType');

type PatchBody = z.infer<typeof PatchTypeSchema>;

function toFields(body: PatchBody): Partial<McpTypeFields> {
  return {
    displayName: body.display_name,
    description: body.description,
    iconUrl: body.icon_url,
    command: body.command,
    args: body.args,
    envMapping: body.env_mapping,
    requiresKey: body.requires_key,
    keyPattern: body.key_pattern,
    configTemplate: body.config_template,
    configSchema: body.config_schema,
    requiredScopes: body.required_scopes,
    resourceLimits: body.resource_limits,
    maxDurationMinutes: body.max_duration_minutes,
    isActive: body.is_active,
  };
}

function toPublicType(row: McpTypeRow): z.infer<typeof PublicTypeSchema> {
  return {
    name: row.name,
    display_name: row.display_name,
    description: row.description,
    icon_url: row.icon_url,
    requires_key: row.requires_key,
    key_pattern: row.key_pattern,
    config_template: row.config_template,
    config_schema: row.config_schema,
    required_scopes: row.required_scopes ?? [],
    resource_limits: row.resource_limits,
    max_duration_minutes: row.max_duration_minutes,
    is_active: row.is_active === true,
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  };
}

function toAdminType(row: McpTypeRow): z.infer<typeof AdminTypeSchema> {
  return {
    ...toPublicType(row),
    server_script: row.server_script,
    command: row.command,
    args: row.args,
    env_mapping: row.env_mapping,
  };
}

export function registerTypeRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const auth = authenticate(deps);
  const admin: MiddlewareHandler<AppEnv>[] = [auth, requireAdmin];

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/types',
      tags: ['types'],
      summary: 'MCP types (admins also see inactive ones)',
      security: BEARER,
      middleware: [auth],
      responses: {
        200: jsonResponse(TypeListSchema, 'Types by name.'),
        ...problems(401, 503),
      },
    }),
    async (c) => {
      const includeInactive = principalOf(c).role === 'admin';
      const rows = await listTypes(deps.pool, { includeInactive });
      return c.json({ types: rows.map(toPublicType) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/types/{name}',
      tags: ['types'],
      summary: 'One MCP type, public fields',
      security: BEARER,
      middleware: [auth],
      request: { params: NameParam },
      responses: {
        200: jsonResponse(PublicTypeSchema, 'The type.'),
        ...problems(400, 401, 404, 503),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const row = await findTypeByName(deps.pool, name);
      if (!row || (row.is_active !== true && principalOf(c).role !== 'admin')) {
        throw new NotFoundError(`MCP type "${name}" not found`, { type: name });
      }
      return c.json(toPublicType(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/types',
      tags: ['types'],
      summary: 'Register a stdio MCP server command as a type (admin)',
      security: BEARER,
      middleware: admin,
      request: { body: jsonBody(CreateTypeSchema) },
      responses: {
        201: jsonResponse(AdminTypeSchema, 'The new type, with its command.'),
        ...problems(400, 401, 403, 409, 413, 415, 503),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await insertType(deps.pool, body.name, {
        displayName: body.display_name,
        description: body.description ?? null,
        iconUrl: body.icon_url ?? null,
        command: body.command,
        args: body.args,
        envMapping: body.env_mapping,
        requiresKey: body.requires_key,
        keyPattern: body.key_pattern ?? null,
        configTemplate: body.config_template,
        configSchema: body.config_schema ?? null,
        requiredScopes: body.required_scopes,
        resourceLimits: body.resource_limits,
        maxDurationMinutes: body.max_duration_minutes,
        isActive: body.is_active,
      });
      c.get('log').info({ type: row.name }, 'mcp type registered');
      return c.json(toAdminType(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/v1/types/{name}',
      tags: ['types'],
      summary: 'Change an MCP type (admin)',
      security: BEARER,
      middleware: admin,
      request: { params: NameParam, body: jsonBody(PatchTypeSchema) },
      responses: {
        200: jsonResponse(AdminTypeSchema, 'The type after the change.'),
        ...problems(400, 401, 403, 404, 413, 415, 503),
      },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      const row = await updateType(deps.pool, name, toFields(c.req.valid('json')));
      if (!row) throw new NotFoundError(`MCP type "${name}" not found`, { type: name });
      c.get('log').info({ type: name }, 'mcp type changed');
      return c.json(toAdminType(row), 200);
    },
  );
}
