// system_settings through the one typed accessor: known keys parsed, defaults
// for removed keys, a malformed value refused by name.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { getSettings } from '../../../../core/db/settings.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { getSetting, putSetting } from '../../../support/queries.js';

describe('settings', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it('reads the settings through one typed accessor', async () => {
    const settings = await getSettings(db.owner);
    expect(settings['mcp.max_instances_per_user']).toBe(10);
    expect(settings['encryption.algorithm']).toBe('aes-256-gcm');
    await putSetting(db.owner, 'mcp.max_instances_per_user', 3);
    expect(await getSetting(db.owner, 'mcp.max_instances_per_user')).toBe(3);
    await db.owner.query(
      sql.unsafe`DELETE FROM system_settings WHERE key = 'process.max_memory_mb'`,
    );
    expect(await getSetting(db.owner, 'process.max_memory_mb')).toBe(512);
    await db.owner.query(
      sql.unsafe`UPDATE system_settings SET value = '"lots"' WHERE key = 'mcp.default_duration_minutes'`,
    );
    await expect(getSettings(db.owner)).rejects.toThrow(/mcp.default_duration_minutes/);
  });
});
