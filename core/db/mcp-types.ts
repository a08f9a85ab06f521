// mcp_types: what an instance can run — a built-in script or any stdio command.
import { sql, UniqueIntegrityConstraintViolationError, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject } from '../domain.js';
import { ConflictError, NotFoundError } from '../errors.js';

export const McpTypeRow = z.object({
  id: z.string().uuid(),
  name: z.string(),
  display_name: z.string(),
  description: z.string().nullable(),
  icon_url: z.string().nullable(),
  server_script: z.string().nullable(),
  command: z.string().nullable(),
  args: z.array(z.string()),
  env_mapping: z.record(z.string(), z.string()),
  requires_key: z.boolean(),
  key_pattern: z.string().nullable(),
  config_template: JsonObject,
  config_schema: JsonObject.nullable(),
  required_scopes: z.array(z.string()).nullable(),
  resource_limits: JsonObject.nullable(),
  max_duration_minutes: z.number().int().nullable(),
  is_active: z.boolean().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
});
export type McpTypeRow = z.infer<typeof McpTypeRow>;

const typeColumns = sql.fragment`
  id, name, display_name, description, icon_url, server_script, command, args, env_mapping,
  requires_key, key_pattern, config_template, config_schema, required_scopes, resource_limits,
  max_duration_minutes, is_active, created_at, updated_at
`;

export async function listTypes(
  db: CommonQueryMethods,
  options: { includeInactive?: boolean } = {},
) {
  return db.any(sql.type(McpTypeRow)`
    SELECT ${typeColumns} FROM mcp_types
    ${options.includeInactive ? sql.fragment`` : sql.fragment`WHERE is_active = true`}
    ORDER BY name
  `);
}

export async function findTypeByName(
  db: CommonQueryMethods,
  name: string,
): Promise<McpTypeRow | null> {
  return db.maybeOne(
    sql.type(McpTypeRow)`SELECT ${typeColumns} FROM mcp_types WHERE name = ${name}`,
  );
}

export async function getTypeById(db: CommonQueryMethods, id: string): Promise<McpTypeRow> {
  const row = await db.maybeOne(
    sql.type(McpTypeRow)`SELECT ${typeColumns} FROM mcp_types WHERE id = ${id}`,
  );
  if (!row) throw new NotFoundError(`MCP type ${id} not found`, { typeId: id });
  return row;
}

/** The registrable fields of a type (an admin's POST / PATCH), camelCase. */
export interface McpTypeFields {
  displayName: string;
  description: string | null;
  iconUrl: string | null;
  command: string;
  args: string[];
  envMapping: Record<string, string>;
  requiresKey: boolean;
  keyPattern: string | null;
  configTemplate: JsonObject;
  configSchema: JsonObject | null;
  requiredScopes: string[];
  resourceLimits: JsonObject;
  maxDurationMinutes: number;
  isActive: boolean;
}

const FIELD_COLUMNS: { [K in keyof McpTypeFields]: { column: string; json?: true } } = {
  displayName: { column: 'display_name' },
  description: { column: 'description' },
  iconUrl: { column: 'icon_url' },
  command: { column: 'command' },
  args: { column: 'args', json: true },
  envMapping: { column: 'env_mapping', json: true },
  requiresKey: { column: 'requires_key' },
  keyPattern: { column: 'key_pattern' },
  configTemplate: { column: 'config_template', json: true },
  configSchema: { column: 'config_schema', json: true },
  requiredScopes: { column: 'required_scopes', json: true },
  resourceLimits: { column: 'resource_limits', json: true },
  maxDurationMinutes: { column: 'max_duration_minutes' },
  isActive: { column: 'is_active' },
};

function fieldAssignments(fields: Partial<McpTypeFields>) {
  return (Object.keys(FIELD_COLUMNS) as (keyof McpTypeFields)[])
    .filter((field) => fields[field] !== undefined)
    .map((field) => {
      const { column, json } = FIELD_COLUMNS[field];
      const value = fields[field] as string | number | boolean | null | object;
      const bound =
        value === null
          ? sql.fragment`NULL`
          : json
            ? sql.fragment`${sql.jsonb(value as JsonObject)}`
            : sql.fragment`${value as string | number | boolean}`;
      return { column: sql.identifier([column]), value: bound };
    });
}

function conflictOnDuplicate(name: string, error: unknown): never {
  if (error instanceof UniqueIntegrityConstraintViolationError) {
    throw new ConflictError(`MCP type "${name}" already exists`, { type: name });
  }
  throw error;
}

/** Registers a stdio command as a type. */
export async function insertType(
  db: CommonQueryMethods,
  name: string,
  fields: McpTypeFields,
): Promise<McpTypeRow> {
  const assignments = fieldAssignments(fields);
  try {
    return await db.one(sql.type(McpTypeRow)`
      INSERT INTO mcp_types (name, ${sql.join(
        assignments.map((a) => a.column),
        sql.fragment`, `,
      )})
      VALUES (${name}, ${sql.join(
        assignments.map((a) => a.value),
        sql.fragment`, `,
      )})
      RETURNING ${typeColumns}
    `);
  } catch (error) {
    conflictOnDuplicate(name, error);
  }
}

/** Changes the given fields of a type; null when there is no such type. */
export async function updateType(
  db: CommonQueryMethods,
  name: string,
  fields: Partial<McpTypeFields>,
): Promise<McpTypeRow | null> {
  const assignments = fieldAssignments(fields);
  if (assignments.length === 0) return findTypeByName(db, name);
  return db.maybeOne(sql.type(McpTypeRow)`
    UPDATE mcp_types SET ${sql.join(
      assignments.map((a) => sql.fragment`${a.column} = ${a.value}`),
      sql.fragment`, `,
    )}
    WHERE name = ${name}
    RETURNING ${typeColumns}
  `);
}
