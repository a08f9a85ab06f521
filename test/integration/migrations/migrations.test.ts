// The schema as migrations: up from empty, the catalog holds everything the
// schema document names, down to empty, and up again.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { REPO_ROOT } from '../../../infra/constructs/paths.js';
import { migrate } from '../../../lambdas/control/db/migrate.js';
import { MIGRATION_NAMES } from '../../support/migrations.js';
import { createEmptyDatabase } from '../../support/database.js';

/** Every migration file: up and down each run all of them. */
const MIGRATION_FILES = readdirSync(path.join(REPO_ROOT, 'migrations')).filter((file) =>
  file.endsWith('.sql'),
).length;

const TABLES = [
  'users',
  'user_api_tokens',
  'mcp_types',
  'nodes',
  'api_keys',
  'mcp_instances',
  'port_allocations',
  'system_settings',
  'mcp_logs',
  'mcp_events',
  'admin_events',
  'api_key_events',
];

const COLUMNS: Record<string, string[]> = {
  users: [
    'id',
    'email',
    'password_hash',
    'name',
    'role',
    'is_active',
    'email_verified',
    'created_at',
    'updated_at',
    'deleted_at',
  ],
  mcp_types: [
    'id',
    'name',
    'display_name',
    'description',
    'icon_url',
    'server_script',
    'config_template',
    'required_scopes',
    'resource_limits',
    'max_duration_minutes',
    'is_active',
    'created_at',
    'updated_at',
    'command',
    'args',
    'env_mapping',
    'requires_key',
    'key_pattern',
    'config_schema',
  ],
  api_keys: [
    'id',
    'user_id',
    'mcp_type_id',
    'encrypted_key',
    'key_hint',
    'encryption_iv',
    'is_active',
    'created_at',
    'updated_at',
    'expires_at',
    'auth_tag',
    'wrapped_data_key',
    'key_provider',
    'master_key_id',
    'encryption_version',
  ],
  mcp_instances: [
    'id',
    'user_id',
    'mcp_type_id',
    'api_key_id',
    'process_id',
    'access_token_hash',
    'access_token_prefix',
    'access_url',
    'assigned_port',
    'status',
    'expires_at',
    'config',
    'error_message',
    'last_accessed',
    'stats',
    'created_at',
    'updated_at',
    'deleted_at',
    'node_id',
  ],
  mcp_logs: [
    'id',
    'mcp_instance_id',
    'timestamp',
    'level',
    'source',
    'message',
    'metadata',
    'created_at',
  ],
  mcp_events: [
    'id',
    'mcp_instance_id',
    'user_id',
    'event_type',
    'event_data',
    'ip_address',
    'user_agent',
    'created_at',
  ],
  port_allocations: [
    'node_id',
    'port',
    'mcp_instance_id',
    'allocated_at',
    'released_at',
    'is_available',
    'last_health_check',
  ],
  system_settings: ['key', 'value', 'description', 'created_at', 'updated_at'],
  nodes: [
    'id',
    'name',
    'grpc_address',
    'public_host',
    'port_range_start',
    'port_range_end',
    'capacity',
    'status',
    'last_heartbeat',
    'agent_version',
    'stats',
    'created_at',
    'updated_at',
  ],
  api_key_events: [
    'id',
    'user_id',
    'api_key_id',
    'mcp_type_id',
    'event_type',
    'event_data',
    'ip_address',
    'user_agent',
    'created_at',
  ],
  user_api_tokens: [
    'id',
    'user_id',
    'name',
    'token_hash',
    'token_prefix',
    'last_used_at',
    'expires_at',
    'revoked_at',
    'created_at',
    'updated_at',
  ],
};

const INDEXES = [
  'idx_mcp_instances_status',
  'idx_mcp_instances_expires_at',
  'idx_mcp_instances_access_token',
  'idx_mcp_instances_port',
  'idx_mcp_instances_process_id',
  'idx_mcp_logs_instance_timestamp',
  'idx_mcp_logs_timestamp',
  'idx_mcp_events_instance',
  'idx_port_allocations_available',
  'idx_port_allocations_mcp',
  'idx_users_email',
  'idx_mcp_instances_user_status',
  'idx_mcp_instances_type',
  'idx_mcp_logs_level',
  'idx_api_keys_user_type',
  'idx_mcp_instances_node_port_live',
];

const CONSTRAINTS = [
  ['mcp_instances', 'check_status', 'c'],
  ['mcp_instances', 'check_port_range', 'c'],
  ['mcp_instances', 'mcp_instances_access_token_hash_key', 'u'],
  ['mcp_instances', 'mcp_instances_node_id_fkey', 'f'],
  ['mcp_logs', 'check_level', 'c'],
  ['api_keys', 'api_keys_user_id_mcp_type_id_key', 'u'],
  ['api_keys', 'api_keys_mcp_type_id_fkey', 'f'],
  ['nodes', 'check_node_status', 'c'],
  ['port_allocations', 'port_allocations_pkey', 'p'],
  ['mcp_logs', 'mcp_logs_pkey', 'p'],
  ['mcp_events', 'mcp_events_pkey', 'p'],
  ['users', 'users_email_key', 'u'],
] as const;

describe('migrations', () => {
  let db: Awaited<ReturnType<typeof createEmptyDatabase>>;
  let client: pg.Client;

  beforeAll(async () => {
    db = await createEmptyDatabase();
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  const userTables = async () =>
    (
      await client.query<{ relname: string }>(
        `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> 'pgmigrations'
         ORDER BY 1`,
      )
    ).rows.map((r) => r.relname);

  it('applies every migration to an empty database and builds the whole schema', async () => {
    const applied = await migrate({ databaseUrl: db.url, direction: 'up' });
    expect(applied.map((m) => m.name)).toEqual(MIGRATION_NAMES);

    const tables = await userTables();
    for (const table of TABLES) expect(tables).toContain(table);

    for (const [table, columns] of Object.entries(COLUMNS)) {
      const found = (
        await client.query<{ column_name: string }>(
          `SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
          [table],
        )
      ).rows.map((r) => r.column_name);
      expect(found.sort()).toEqual([...columns].sort());
    }

    const indexes = (
      await client.query<{ indexname: string }>(
        `SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`,
      )
    ).rows.map((r) => r.indexname);
    for (const index of INDEXES) expect(indexes).toContain(index);

    for (const [table, name, type] of CONSTRAINTS) {
      const row = await client.query(
        `SELECT 1 FROM pg_constraint WHERE conrelid = $1::regclass AND conname = $2 AND contype = $3`,
        [table, name, type],
      );
      expect({ table, name, found: row.rowCount }).toEqual({ table, name, found: 1 });
    }

    const partitioned = (
      await client.query<{ relname: string }>(
        `SELECT relname FROM pg_class WHERE relkind = 'p' ORDER BY 1`,
      )
    ).rows.map((r) => r.relname);
    expect(partitioned).toEqual(['mcp_events', 'mcp_logs']);

    const rls = (
      await client.query<{
        relname: string;
        relrowsecurity: boolean;
        relforcerowsecurity: boolean;
      }>(
        `SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class
         WHERE relname IN ('api_keys', 'mcp_instances', 'mcp_logs', 'mcp_events', 'user_api_tokens', 'api_key_events') ORDER BY 1`,
      )
    ).rows;
    expect(rls).toHaveLength(6);
    for (const row of rls)
      expect([row.relrowsecurity, row.relforcerowsecurity]).toEqual([true, true]);

    const triggers = (
      await client.query<{ tgname: string }>(`SELECT tgname FROM pg_trigger WHERE NOT tgisinternal`)
    ).rows.map((r) => r.tgname);
    expect(triggers).toEqual(
      expect.arrayContaining([
        'touch_users',
        'touch_mcp_types',
        'touch_api_keys',
        'touch_mcp_instances',
        'touch_nodes',
        'touch_system_settings',
      ]),
    );
  });

  it('seeds the MCP types, the eight settings and the 3001-3100 port pool', async () => {
    const types = await client.query(
      `SELECT name, display_name, server_script, config_template FROM mcp_types ORDER BY name`,
    );
    expect(types.rows).toEqual([
      {
        name: 'demo',
        display_name: 'Demo MCP',
        server_script: './mcp-servers/demo-mcp-server.js',
        config_template: {},
      },
      {
        name: 'figma',
        display_name: 'Figma MCP',
        server_script: './mcp-servers/figma-mcp-server.js',
        config_template: { api_version: 'v2' },
      },
      {
        name: 'github',
        display_name: 'GitHub MCP',
        server_script: './mcp-servers/github-mcp-server.js',
        config_template: { api_version: 'v3' },
      },
      {
        name: 'gmail',
        display_name: 'Gmail MCP',
        server_script: './mcp-servers/gmail-mcp-server.js',
        config_template: { api_version: 'v1' },
      },
    ]);
    const settings = await client.query(`SELECT key, value FROM system_settings ORDER BY key`);
    expect(
      Object.fromEntries(
        settings.rows.map((r: { key: string; value: unknown }) => [r.key, r.value]),
      ),
    ).toEqual({
      'cleanup.retention_days': 30,
      'encryption.algorithm': 'aes-256-gcm',
      'mcp.default_duration_minutes': 60,
      'mcp.max_instances_per_user': 10,
      'port.range_end': 3100,
      'port.range_start': 3001,
      'process.max_cpu_percent': 50,
      'process.max_memory_mb': 512,
      'users.require_verified_email': false,
    });
    const pool = await client.query(
      `SELECT min(port) AS lo, max(port) AS hi, count(*)::int AS n, bool_and(is_available) AS free FROM port_allocations`,
    );
    expect(pool.rows[0]).toEqual({ lo: 3001, hi: 3100, n: 100, free: true });
  });

  it('keeps updated_at current through the trigger', async () => {
    const before = await client.query(
      `SELECT updated_at FROM system_settings WHERE key = 'port.range_end'`,
    );
    await client.query(`UPDATE system_settings SET value = '3100' WHERE key = 'port.range_end'`);
    const after = await client.query(
      `SELECT updated_at FROM system_settings WHERE key = 'port.range_end'`,
    );
    expect(after.rows[0].updated_at.getTime()).toBeGreaterThan(before.rows[0].updated_at.getTime());
  });

  it('rolls every migration back to an empty schema, and applies them again', async () => {
    const reverted = await migrate({ databaseUrl: db.url, direction: 'down' });
    expect(reverted).toHaveLength(MIGRATION_FILES);
    expect(await userTables()).toEqual([]);
    const functions = await client.query(
      `SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'`,
    );
    expect(functions.rows).toEqual([]);

    const again = await migrate({ databaseUrl: db.url, direction: 'up' });
    expect(again).toHaveLength(MIGRATION_FILES);
    expect((await userTables()).filter((t) => TABLES.includes(t)).sort()).toEqual(
      [...TABLES].sort(),
    );
  });
});
