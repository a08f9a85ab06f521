// Port allocation: claims that stay correct under concurrency, and releases.
// (The schema document's port queries are in sample-queries.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { claimFreePort, countPorts, releasePortsOfInstance } from '../../../../core/db/ports.js';
import { PortPoolExhaustedError } from '../../../../core/errors.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { localNode, makeInstance, makeNode, makeUser } from '../../../support/fixtures.js';

describe('port allocation', () => {
  let db: TestDatabase;
  let userId: string;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 40 });
    userId = (await makeUser(db.owner)).id;
  });
  afterAll(() => db.drop());

  it('releases whatever port an instance holds', async () => {
    const node = await makeNode(db.owner, { portRangeStart: 4101, portRangeEnd: 4102 });
    const instance = await makeInstance(db.owner, { userId, nodeId: node.id });
    const port = await claimFreePort(db.owner, node.id, instance.id);
    expect(port).toBe(4101);
    expect(await releasePortsOfInstance(db.owner, instance.id)).toBe(1);
    expect(await countPorts(db.owner, node.id)).toMatchObject({ free: 2, used: 0 });
  });

  it('hands 200 concurrent claims on a 100-port pool exactly 100 distinct ports', async () => {
    const node = await localNode(db.owner);
    const instances = await Promise.all(
      Array.from({ length: 200 }, () => makeInstance(db.owner, { userId, nodeId: node.id })),
    );

    const results = await Promise.allSettled(
      instances.map((instance) =>
        db.owner.transaction((tx) => claimFreePort(tx, node.id, instance.id)),
      ),
    );

    const ports = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(ports).toHaveLength(100);
    expect(new Set(ports).size).toBe(100);
    expect(Math.min(...ports)).toBe(3001);
    expect(Math.max(...ports)).toBe(3100);
    expect(failures).toHaveLength(100);
    for (const failure of failures) expect(failure).toBeInstanceOf(PortPoolExhaustedError);

    const held = await db.owner.one(
      sql.type(z.object({ used: z.number(), owners: z.number() }))`
        SELECT count(*)::int AS used, count(DISTINCT mcp_instance_id)::int AS owners
        FROM port_allocations WHERE node_id = ${node.id} AND NOT is_available`,
    );
    expect(held).toEqual({ used: 100, owners: 100 });
  });
});
