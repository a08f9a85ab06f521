// The api_keys queries the flows share: the schema document's key-usage query
// (as GET /v1/keys runs it), disabling and enabling, and when a key is usable.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import {
  findApiKey,
  findKeyUsage,
  keyUsability,
  listKeyUsage,
  setApiKeyActive,
} from '../../../../core/db/api-keys.js';
import { asUser } from '../../../../lambdas/control/db/user-context.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeApiKey, makeInstance, makeUser } from '../../../support/fixtures.js';
import { getTypeByName } from '../../../support/queries.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

const storeKey = (userId: string, type: string, hint: string) =>
  makeApiKey(db.owner, { userId, type, hint });

async function instanceWithKey(userId: string, type: string, keyId: string, status: string) {
  const instance = await makeInstance(db.owner, { userId, type });
  await db.owner.query(
    sql.unsafe`UPDATE mcp_instances SET api_key_id = ${keyId}, status = ${status} WHERE id = ${instance.id}`,
  );
  return instance;
}

describe('listKeyUsage (the schema document’s "API Key Usage Check")', () => {
  it('reports each key with its running instances and its last use', async () => {
    const user = await makeUser(db.owner);
    const key = await storeKey(user.id, 'github', '…wxyz');
    const running = await instanceWithKey(user.id, 'github', key.id, 'running');
    const usage = await asUser(db.app, user.id, (tx) => listKeyUsage(tx, user.id));
    expect(usage).toEqual([
      expect.objectContaining({
        id: key.id,
        type: 'github',
        display_name: 'GitHub MCP',
        key_hint: '…wxyz',
        is_active: true,
        active_instances: 1,
        last_used: running.created_at,
      }),
    ]);
  });

  it('counts only running instances, but dates the last use from any instance made with the key', async () => {
    const user = await makeUser(db.owner);
    const key = await storeKey(user.id, 'figma', '…fig1');
    await instanceWithKey(user.id, 'figma', key.id, 'running');
    const expired = await instanceWithKey(user.id, 'figma', key.id, 'expired');
    const typeId = (await getTypeByName(db.owner, 'figma')).id;
    const usage = await asUser(db.app, user.id, (tx) => findKeyUsage(tx, user.id, typeId));
    expect(usage).toMatchObject({ active_instances: 1, last_used: expired.created_at });
  });

  it('lists a disabled key too, and a key never used with no last use', async () => {
    const user = await makeUser(db.owner);
    const key = await storeKey(user.id, 'gmail', '…mail');
    await asUser(db.app, user.id, (tx) => setApiKeyActive(tx, user.id, key.mcp_type_id, false));
    const usage = await asUser(db.app, user.id, (tx) => listKeyUsage(tx, user.id));
    expect(usage).toEqual([
      expect.objectContaining({
        type: 'gmail',
        is_active: false,
        active_instances: 0,
        last_used: null,
      }),
    ]);
  });

  it("shows one user nothing of another's keys or instances (row-level security)", async () => {
    const alice = await makeUser(db.owner);
    const bob = await makeUser(db.owner);
    const key = await storeKey(alice.id, 'github', '…AL1C');
    await instanceWithKey(alice.id, 'github', key.id, 'running');
    expect(await asUser(db.app, bob.id, (tx) => listKeyUsage(tx, alice.id))).toEqual([]);
  });
});

describe('setApiKeyActive', () => {
  it('disables and enables the key in place, keeping its envelope, and says when it already was so', async () => {
    const user = await makeUser(db.owner);
    const key = await storeKey(user.id, 'github', '…keep');
    const off = await asUser(db.app, user.id, (tx) =>
      setApiKeyActive(tx, user.id, key.mcp_type_id, false),
    );
    expect(off).toMatchObject({ id: key.id, is_active: false, encrypted_key: key.encrypted_key });
    const on = await asUser(db.app, user.id, (tx) =>
      setApiKeyActive(tx, user.id, key.mcp_type_id, true),
    );
    expect(on).toMatchObject({ id: key.id, is_active: true });
    // Already enabled: nothing changes, and the caller learns so (no audit event to write).
    const again = await asUser(db.app, user.id, (tx) =>
      setApiKeyActive(tx, user.id, key.mcp_type_id, true),
    );
    expect(again).toBeNull();
    expect(await findApiKey(db.owner, user.id, key.mcp_type_id)).toMatchObject({
      is_active: true,
    });
  });

  it('answers null when the user has no key for the type', async () => {
    const user = await makeUser(db.owner);
    const typeId = (await getTypeByName(db.owner, 'github')).id;
    expect(await asUser(db.app, user.id, (tx) => setApiKeyActive(tx, user.id, typeId, false))).toBe(
      null,
    );
  });
});

describe('keyUsability', () => {
  const now = new Date('2026-12-07T12:00:00Z');
  it('is usable when active and unexpired, expired at or past expires_at, else disabled when inactive', () => {
    expect(keyUsability({ is_active: true, expires_at: null }, now)).toBe('usable');
    expect(
      keyUsability({ is_active: true, expires_at: new Date('2026-12-07T12:00:01Z') }, now),
    ).toBe('usable');
    expect(keyUsability({ is_active: true, expires_at: now }, now)).toBe('expired');
    expect(keyUsability({ is_active: false, expires_at: null }, now)).toBe('disabled');
    expect(keyUsability({ is_active: null, expires_at: null }, now)).toBe('disabled');
    // Expired says more than disabled: enabling would not be enough, a new key is.
    expect(
      keyUsability({ is_active: false, expires_at: new Date('2020-01-01T00:00:00Z') }, now),
    ).toBe('expired');
  });
});
