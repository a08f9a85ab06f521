// api_key_events under row-level security: a user writes and reads only their
// own key's trail, and the trail outlives the key it is about.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { insertKeyEvent } from '../../../../../lambdas/control/db/key-events.js';
import { asUser } from '../../../../../lambdas/control/db/user-context.js';
import { violates } from '../../../../support/constraints.js';
import { createTestDatabase, type TestDatabase } from '../../../../support/database.js';
import { makeUser } from '../../../../support/fixtures.js';
import { getTypeByName } from '../../../../support/queries.js';

describe('api_key_events', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db.drop());

  it("keeps each user's trail to that user, even for a key id that no longer exists", async () => {
    const alice = await makeUser(db.owner);
    const bob = await makeUser(db.owner);
    const typeId = (await getTypeByName(db.owner, 'github')).id;
    const event = {
      userId: alice.id,
      apiKeyId: '00000000-0000-4000-8000-000000000001',
      mcpTypeId: typeId,
      type: 'deleted' as const,
      data: { type: 'github', hint: '…AL1C' },
      ipAddress: '192.0.2.7',
      userAgent: 'curl/8',
    };
    const written = await asUser(db.app, alice.id, (tx) => insertKeyEvent(tx, event));
    expect(written).toMatchObject({ event_type: 'deleted', ip_address: '192.0.2.7' });

    const read = (userId: string) =>
      asUser(db.app, userId, (tx) => tx.anyFirst(sql.unsafe`SELECT id FROM api_key_events`));
    expect(await read(alice.id)).toEqual([written.id]);
    expect(await read(bob.id)).toEqual([]);
    await expect(asUser(db.app, bob.id, (tx) => insertKeyEvent(tx, event))).rejects.toThrow(
      /row-level security/,
    );
  });

  it('refuses an event type the schema does not know', async () => {
    const user = await makeUser(db.owner);
    const typeId = (await getTypeByName(db.owner, 'github')).id;
    await violates(
      db.owner.query(sql.unsafe`
        INSERT INTO api_key_events (user_id, api_key_id, mcp_type_id, event_type)
        VALUES (${user.id}, gen_random_uuid(), ${typeId}, 'rotated')`),
      /check_key_event_type/,
    );
  });
});
