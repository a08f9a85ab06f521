// system_settings, read through one typed accessor: every known key parsed,
// defaults from the seed for any that an operator removed.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

export const Settings = z.object({
  'encryption.algorithm': z.literal('aes-256-gcm').default('aes-256-gcm'),
  'mcp.default_duration_minutes': z.number().int().positive().default(60),
  'mcp.max_instances_per_user': z.number().int().nonnegative().default(10),
  'cleanup.retention_days': z.number().int().positive().default(30),
  'port.range_start': z.number().int().min(1024).max(65535).default(3001),
  'port.range_end': z.number().int().min(1024).max(65535).default(3100),
  'process.max_memory_mb': z.number().int().positive().default(512),
  'process.max_cpu_percent': z
    .number()
    .positive()
    .max(100 * 64)
    .default(50),
  'users.require_verified_email': z.boolean().default(false),
});
export type Settings = z.infer<typeof Settings>;
export type SettingKey = keyof Settings;

const SettingRow = z.object({ key: z.string(), value: z.unknown() });

export async function getSettings(db: CommonQueryMethods): Promise<Settings> {
  const rows = await db.any(sql.type(SettingRow)`SELECT key, value FROM system_settings`);
  const known = new Set<string>(Object.keys(Settings.shape));
  const raw = Object.fromEntries(rows.filter((r) => known.has(r.key)).map((r) => [r.key, r.value]));
  return Settings.parse(raw);
}
