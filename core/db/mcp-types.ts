// mcp_types: what an instance can run — a built-in script or any stdio command.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { JsonObject } from '../domain.js';
import { NotFoundError } from '../errors.js';

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

export async function getTypeByName(db: CommonQueryMethods, name: string): Promise<McpTypeRow> {
  const row = await findTypeByName(db, name);
  if (!row) throw new NotFoundError(`MCP type "${name}" not found`, { type: name });
  return row;
}

export async function getTypeById(db: CommonQueryMethods, id: string): Promise<McpTypeRow> {
  const row = await db.maybeOne(
    sql.type(McpTypeRow)`SELECT ${typeColumns} FROM mcp_types WHERE id = ${id}`,
  );
  if (!row) throw new NotFoundError(`MCP type ${id} not found`, { typeId: id });
  return row;
}
