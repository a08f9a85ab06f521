// Row-level security with the application's own role (not the owner): a
// query that forgets its WHERE user_id still sees only the caller's rows.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertEvent } from '../../../core/db/events.js';
import { insertLogs } from '../../support/queries.js';
import { createDatabasePool, type DatabasePool } from '../../../core/db/pool.js';
import { asSystem, asUser } from '../../../lambdas/control/db/user-context.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { makeInstance, makeUser } from '../../support/fixtures.js';

const IdRow = z.object({ id: z.string() });

describe('row-level security', () => {
  let db: TestDatabase;
  let alice: string;
  let bob: string;
  let aliceInstance: string;
  let bobInstance: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    alice = (await makeUser(db.owner)).id;
    bob = (await makeUser(db.owner)).id;
    aliceInstance = (await makeInstance(db.owner, { userId: alice })).id;
    bobInstance = (await makeInstance(db.owner, { userId: bob })).id;
    for (const [user, instance] of [
      [alice, aliceInstance],
      [bob, bobInstance],
    ] as const) {
      await insertLogs(db.owner, [
        {
          instanceId: instance,
          timestamp: new Date(),
          level: 'info',
          source: 'process',
          message: `log of ${user}`,
        },
      ]);
      await insertEvent(db.owner, { instanceId: instance, userId: user, type: 'created' });
      await db.owner.query(sql.unsafe`
        INSERT INTO api_keys (user_id, mcp_type_id, encrypted_key, encryption_iv, auth_tag, wrapped_data_key, key_provider, master_key_id)
        SELECT ${user}, id, 'x', '00', '00', 'x', 'local', 'local:test' FROM mcp_types WHERE name = 'github'`);
    }
  });
  afterAll(() => db.drop());

  it('connects as a role that owns nothing and cannot bypass RLS', async () => {
    const role = await db.app.one(
      sql.type(
        z.object({
          rolname: z.string(),
          rolsuper: z.boolean(),
          rolbypassrls: z.boolean(),
          owns: z.number(),
        }),
      )`
        SELECT r.rolname, r.rolsuper, r.rolbypassrls,
          (SELECT count(*)::int FROM pg_class c WHERE c.relowner = r.oid) AS owns
        FROM pg_roles r WHERE r.rolname = current_user`,
    );
    expect(role).toEqual({ rolname: 'minimcp_app', rolsuper: false, rolbypassrls: false, owns: 0 });
  });

  it.each(['mcp_instances', 'api_keys', 'mcp_logs', 'mcp_events'])(
    'shows %s rows of the current user only, even with no WHERE clause',
    async (table) => {
      const column = table === 'mcp_logs' || table === 'mcp_events' ? 'mcp_instance_id' : 'user_id';
      const seen = await asUser(db.app, alice, (tx) =>
        tx.any(
          sql.type(
            z.object({ owner: z.string() }),
          )`SELECT ${sql.identifier([column])}::text AS owner FROM ${sql.identifier([table])}`,
        ),
      );
      expect(seen.length).toBe(1);
      expect(seen[0]?.owner).toBe(column === 'user_id' ? alice : aliceInstance);
    },
  );

  it('shows nothing at all without a user context', async () => {
    const rows = await db.app.any(sql.type(IdRow)`SELECT id::text FROM mcp_instances`);
    expect(rows).toEqual([]);
  });

  it('lets user A neither change nor delete user B rows', async () => {
    const updated = await asUser(db.app, alice, (tx) =>
      tx.query(sql.unsafe`UPDATE mcp_instances SET status = 'error' WHERE id = ${bobInstance}`),
    );
    expect(updated.rowCount).toBe(0);
    const deleted = await asUser(db.app, alice, (tx) =>
      tx.query(sql.unsafe`DELETE FROM api_keys WHERE user_id = ${bob}`),
    );
    expect(deleted.rowCount).toBe(0);
    const status = await db.owner.oneFirst(
      sql.unsafe`SELECT status FROM mcp_instances WHERE id = ${bobInstance}`,
    );
    expect(status).toBe('pending');
    expect(
      await db.owner.oneFirst(
        sql.unsafe`SELECT count(*)::int FROM api_keys WHERE user_id = ${bob}`,
      ),
    ).toBe(1);
  });

  it('refuses to write a row on behalf of another user', async () => {
    await expect(
      asUser(db.app, alice, (tx) =>
        tx.query(
          sql.unsafe`INSERT INTO mcp_events (mcp_instance_id, user_id, event_type) VALUES (${bobInstance}, ${alice}, 'created')`,
        ),
      ),
    ).rejects.toThrow(/row-level security/);
    await expect(
      asUser(db.app, alice, (tx) =>
        tx.query(sql.unsafe`UPDATE mcp_instances SET user_id = ${bob} WHERE id = ${aliceInstance}`),
      ),
    ).rejects.toThrow(/row-level security/);
  });

  it('forgets the user when the transaction ends (pooled connections do not leak it)', async () => {
    const pool: DatabasePool = await createDatabasePool(db.appUrl, { maximumPoolSize: 1 });
    try {
      await asUser(pool, alice, (tx) => tx.any(sql.unsafe`SELECT 1`));
      const after = await pool.any(sql.type(IdRow)`SELECT id::text FROM mcp_instances`);
      expect(after).toEqual([]);
    } finally {
      await pool.end();
    }
  });

  it('sees every row in system scope (maintenance work)', async () => {
    const rows = await asSystem(db.app, (tx) =>
      tx.any(sql.type(IdRow)`SELECT id::text FROM mcp_instances`),
    );
    expect(rows.map((r) => r.id).sort()).toEqual([aliceInstance, bobInstance].sort());
  });

  it('gives the agent role every instance but no access to users', async () => {
    const agent = await createDatabasePool(db.agentUrl, { maximumPoolSize: 1 });
    try {
      const rows = await agent.any(sql.type(IdRow)`SELECT id::text FROM mcp_instances`);
      expect(rows).toHaveLength(2);
      await expect(agent.any(sql.unsafe`SELECT email FROM users`)).rejects.toThrow(
        /permission denied/,
      );
      await expect(
        agent.query(
          sql.unsafe`UPDATE mcp_instances SET access_token_hash = repeat('a', 64) WHERE id = ${aliceInstance}`,
        ),
      ).rejects.toThrow(/permission denied/);
    } finally {
      await agent.end();
    }
  });
});
