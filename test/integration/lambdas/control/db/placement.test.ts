// Node placement: active, fresh, free ports, under capacity, least loaded.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { insertInstance } from '../../../../../lambdas/control/db/instance-changes.js';
import { getTypeByName } from '../../../../support/queries.js';
import { placeInstance } from '../../../../../lambdas/control/db/placement.js';
import { NoNodeAvailableError, PortPoolExhaustedError } from '../../../../../core/errors.js';
import { issueToken } from '../../../../../core/tokens.js';
import { createTestDatabase, type TestDatabase } from '../../../../support/database.js';
import { makeInstance, makeNode, makeUser } from '../../../../support/fixtures.js';

const FRESH = { heartbeatFreshSeconds: 30 };

describe('placement', () => {
  let db: TestDatabase;
  let userId: string;

  beforeAll(async () => {
    db = await createTestDatabase({ poolSize: 30 });
    userId = (await makeUser(db.owner)).id;
  });
  beforeEach(async () => {
    await db.owner.query(sql.unsafe`UPDATE nodes SET status = 'down'`);
  });
  afterAll(() => db.drop());

  /** Claims a port and inserts the instance in one transaction, as the API does. */
  const create = async () =>
    db.owner.transaction(async (tx) => {
      const id = randomUUID();
      const placement = await placeInstance(tx, id, FRESH);
      const type = await getTypeByName(tx, 'demo');
      const token = issueToken('access');
      await insertInstance(tx, {
        id,
        userId,
        mcpTypeId: type.id,
        apiKeyId: null,
        nodeId: placement.node.id,
        accessTokenHash: token.hash,
        accessTokenPrefix: token.displayPrefix,
        accessUrl: `http://${placement.node.public_host}:${placement.port}/mcp`,
        expiresAt: new Date(Date.now() + 60_000),
      });
      await tx.query(
        sql.unsafe`UPDATE mcp_instances SET assigned_port = ${placement.port} WHERE id = ${id}`,
      );
      return placement;
    });

  it('refuses with NoNodeAvailableError when no node is active and fresh', async () => {
    const stale = await makeNode(db.owner, { portRangeStart: 5001, portRangeEnd: 5002 });
    await db.owner.query(
      sql.unsafe`UPDATE nodes SET last_heartbeat = now() - interval '5 minutes' WHERE id = ${stale.id}`,
    );
    const draining = await makeNode(db.owner, { portRangeStart: 5001, portRangeEnd: 5002 });
    await db.owner.query(
      sql.unsafe`UPDATE nodes SET status = 'draining' WHERE id = ${draining.id}`,
    );
    await expect(create()).rejects.toBeInstanceOf(NoNodeAvailableError);
  });

  it('places on the least loaded node, and respects capacity', async () => {
    const busy = await makeNode(db.owner, { portRangeStart: 5101, portRangeEnd: 5110 });
    const idle = await makeNode(db.owner, { portRangeStart: 5101, portRangeEnd: 5110 });
    for (let i = 0; i < 3; i++) {
      const instance = await makeInstance(db.owner, { userId, nodeId: busy.id });
      await db.owner.query(
        sql.unsafe`UPDATE port_allocations SET is_available = false, mcp_instance_id = ${instance.id} WHERE node_id = ${busy.id} AND port = ${5101 + i}`,
      );
    }
    expect((await create()).node.id).toBe(idle.id);
    await db.owner.query(sql.unsafe`UPDATE nodes SET capacity = 1 WHERE id = ${idle.id}`);
    await db.owner.query(sql.unsafe`UPDATE nodes SET capacity = 3 WHERE id = ${busy.id}`);
    await expect(create()).rejects.toBeInstanceOf(NoNodeAvailableError);
  });

  it('gives 120 concurrent creates on a 100-port node exactly 100 distinct ports and 20 clean refusals', async () => {
    const node = await makeNode(db.owner, { portRangeStart: 6001, portRangeEnd: 6100 });
    const results = await Promise.allSettled(Array.from({ length: 120 }, () => create()));
    const ports = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.port] : []));
    const refusals = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(ports).toHaveLength(100);
    expect(new Set(ports).size).toBe(100);
    expect(refusals).toHaveLength(20);
    for (const refusal of refusals) {
      expect(
        refusal instanceof PortPoolExhaustedError || refusal instanceof NoNodeAvailableError,
      ).toBe(true);
    }
    const live = await db.owner.oneFirst(
      sql.unsafe`SELECT count(DISTINCT assigned_port)::int FROM mcp_instances WHERE node_id = ${node.id}`,
    );
    expect(live).toBe(100);
  });
});
