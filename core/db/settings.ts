// system_settings, read through one typed accessor: every known key parsed,
// defaults from the seed for any that an operator removed. Each key has its
// own schema (type and range), which PATCH /v1/settings/{key} checks too.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/** The lowest port an instance may get (port_allocations' CHECK). */
const PORT = z.number().int().min(3001).max(65535);

/** Each known key's value: its type and range. */
export const SETTING_SCHEMAS = {
  'encryption.algorithm': z.literal('aes-256-gcm'),
  'mcp.default_duration_minutes': z.number().int().min(1).max(525_600),
  'mcp.max_instances_per_user': z.number().int().min(0).max(10_000),
  'cleanup.retention_days': z.number().int().min(1).max(3_650),
  'port.range_start': PORT,
  'port.range_end': PORT,
  'process.max_memory_mb': z.number().int().min(16).max(1_048_576),
  'process.max_cpu_percent': z
    .number()
    .positive()
    .max(100 * 64),
  'users.require_verified_email': z.boolean(),
} as const;

export type SettingKey = keyof typeof SETTING_SCHEMAS;

/** The seed's values: what a removed row reads as. */
export const SETTING_DEFAULTS: { [K in SettingKey]: z.infer<(typeof SETTING_SCHEMAS)[K]> } = {
  'encryption.algorithm': 'aes-256-gcm',
  'mcp.default_duration_minutes': 60,
  'mcp.max_instances_per_user': 10,
  'cleanup.retention_days': 30,
  'port.range_start': 3001,
  'port.range_end': 3100,
  'process.max_memory_mb': 512,
  'process.max_cpu_percent': 50,
  'users.require_verified_email': false,
};

export const Settings = z.object(
  Object.fromEntries(
    Object.entries(SETTING_SCHEMAS).map(([key, schema]) => [
      key,
      (schema as z.ZodType<unknown>).default(SETTING_DEFAULTS[key as SettingKey]),
    ]),
  ) as unknown as { [K in SettingKey]: z.ZodDefault<(typeof SETTING_SCHEMAS)[K]> },
);
export type Settings = z.infer<typeof Settings>;

export function isSettingKey(key: string): key is SettingKey {
  return Object.hasOwn(SETTING_SCHEMAS, key);
}

const SettingRow = z.object({ key: z.string(), value: z.unknown() });

export async function getSettings(db: CommonQueryMethods): Promise<Settings> {
  const rows = await db.any(sql.type(SettingRow)`SELECT key, value FROM system_settings`);
  const raw = Object.fromEntries(
    rows.filter((r) => isSettingKey(r.key)).map((r) => [r.key, r.value]),
  );
  return Settings.parse(raw);
}

export const SettingDetailRow = z.object({
  key: z.string(),
  value: z.unknown(),
  description: z.string().nullable(),
  updated_at: z.date().nullable(),
});
export type SettingDetailRow = z.infer<typeof SettingDetailRow>;

/** Every stored row of the known keys, with description and last change. */
export async function listSettingRows(
  db: CommonQueryMethods,
): Promise<readonly SettingDetailRow[]> {
  return db.any(sql.type(SettingDetailRow)`
    SELECT key, value, description, updated_at FROM system_settings
    WHERE key = ANY(${sql.array(Object.keys(SETTING_SCHEMAS), 'text')})
    ORDER BY key
  `);
}

/** Serializes setting changes (a check across keys, e.g. the port range, sees the other's last value). */
export async function lockSettings(db: CommonQueryMethods): Promise<void> {
  await db.query(sql.unsafe`SELECT pg_advisory_xact_lock(hashtext('minimcp_system_settings'))`);
}

/**
 * Writes one key's value (the row is created if an operator removed it) and
 * returns the row with the value it had before (null when there was none).
 * The row is locked first, so two changes of a key are recorded in order.
 */
export async function writeSetting(
  db: CommonQueryMethods,
  key: SettingKey,
  value: unknown,
): Promise<{ row: SettingDetailRow; previous: unknown }> {
  const before = await db.maybeOne(sql.type(SettingRow)`
    SELECT key, value FROM system_settings WHERE key = ${key} FOR UPDATE
  `);
  const row = await db.one(sql.type(SettingDetailRow)`
    INSERT INTO system_settings (key, value) VALUES (${key}, ${sql.jsonb(value as never)})
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value
    RETURNING key, value, description, updated_at
  `);
  return { row, previous: before ? before.value : null };
}
