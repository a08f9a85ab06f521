// MCP types the benchmarks register in their own databases: any stdio command,
// the way an admin registers one (`command` + `args`, no key).
import { sql, type CommonQueryMethods } from 'slonik';

export async function registerCommandType(
  db: CommonQueryMethods,
  name: string,
  command: string,
  args: readonly string[],
): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO mcp_types (name, display_name, command, args, requires_key, max_duration_minutes)
    VALUES (${name}, ${name}, ${command}, ${sql.jsonb([...args])}, false, 240)
  `);
}
