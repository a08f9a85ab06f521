// Queries only tests need, to arrange and inspect rows: production code has
// no caller for them, so they left core/db (issue 17, prune).
import { randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { insertLogColumns, type NewLogEntry } from '../../core/db/logs.js';
import { findTypeByName, type McpTypeRow } from '../../core/db/mcp-types.js';
import { NodeRow } from '../../core/db/nodes.js';
import { getSettings, Settings, type SettingKey } from '../../core/db/settings.js';

export async function getTypeByName(db: CommonQueryMethods, name: string): Promise<McpTypeRow> {
  const row = await findTypeByName(db, name);
  if (!row) throw new Error(`MCP type "${name}" not found`);
  return row;
}

export async function findNodeByName(
  db: CommonQueryMethods,
  name: string,
): Promise<NodeRow | null> {
  return db.maybeOne(sql.type(NodeRow)`
    SELECT id, name, grpc_address, public_host, port_range_start, port_range_end, capacity,
      status, last_heartbeat, agent_version, stats, created_at, updated_at
    FROM nodes WHERE name = ${name}`);
}

/** Inserts many lines in one statement, as the log shipper does; returns how many landed. */
export async function insertLogs(
  db: CommonQueryMethods,
  entries: readonly NewLogEntry[],
): Promise<number> {
  return insertLogColumns(
    db,
    {
      ids: entries.map((e) => e.id ?? randomUUID()),
      instanceIds: entries.map((e) => e.instanceId),
      timestamps: entries.map((e) => e.timestamp.getTime()),
      levels: entries.map((e) => e.level),
      sources: entries.map((e) => e.source),
      messages: entries.map((e) => e.message),
      metadata: entries.map((e) => e.metadata),
    },
    { skipExisting: true },
  );
}

export async function getSetting<K extends SettingKey>(
  db: CommonQueryMethods,
  key: K,
): Promise<Settings[K]> {
  return (await getSettings(db))[key];
}

export async function putSetting<K extends SettingKey>(
  db: CommonQueryMethods,
  key: K,
  value: Settings[K],
): Promise<void> {
  const parsed = Settings.shape[key].parse(value);
  await db.query(sql.unsafe`
    INSERT INTO system_settings (key, value) VALUES (${key}, ${sql.jsonb(parsed)})
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
  `);
}
