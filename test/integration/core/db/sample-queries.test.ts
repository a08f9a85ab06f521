// The sample queries of the database schema document, as named functions in
// core/db/sample-queries.ts, run against the real schema.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { countPorts } from '../../../../core/db/ports.js';
import {
  allocatePort,
  findInstanceWithLogsByTokenHash,
  findNextFreePort,
  listActiveInstancesForUser,
  listRunningProcesses,
  markExpiredInstances,
  releasePort,
} from '../../../../core/db/sample-queries.js';
import { asUser } from '../../../../lambdas/control/db/user-context.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { localNode, makeInstance, makeNode, makeUser } from '../../../support/fixtures.js';
import { insertLogs } from '../../../support/queries.js';

describe('sample queries', () => {
  let db: TestDatabase;
  let userId: string;
  let nodeId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    nodeId = (await localNode(db.owner)).id;
  });
  afterAll(() => db.drop());

  it('lists the active (running or pending) instances of a user, newest first, with their type', async () => {
    const first = await makeInstance(db.owner, { userId });
    const second = await makeInstance(db.owner, { userId, type: 'github' });
    const finished = await makeInstance(db.owner, { userId });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'running' WHERE id = ${first.id}`,
    );
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'expired' WHERE id = ${finished.id}`,
    );
    const other = await makeUser(db.owner);
    await makeInstance(db.owner, { userId: other.id });

    const rows = await asUser(db.app, userId, (tx) => listActiveInstancesForUser(tx, userId));
    expect(rows.map((r) => [r.id, r.mcp_type, r.status])).toEqual([
      [second.id, 'github', 'pending'],
      [first.id, 'demo', 'running'],
    ]);
    expect(rows[0]).toMatchObject({ display_name: 'GitHub MCP', icon_url: null });
    expect(Object.keys(rows[0] ?? {})).not.toContain('access_token_hash');
  });

  it('finds an instance with its newest logs by the hash of its access token', async () => {
    const instance = await makeInstance(db.owner, { userId });
    const base = Date.now();
    await insertLogs(
      db.owner,
      [0, 1, 2].map((i) => ({
        instanceId: instance.id,
        timestamp: new Date(base + i * 1000),
        level: 'info' as const,
        source: 'process' as const,
        message: `line ${i}`,
      })),
    );
    const found = await findInstanceWithLogsByTokenHash(db.owner, instance.access_token_hash);
    expect(found?.id).toBe(instance.id);
    expect(found?.logs.map((l) => l.message)).toEqual(['line 2', 'line 1', 'line 0']);
    expect(await findInstanceWithLogsByTokenHash(db.owner, 'f'.repeat(64))).toBeNull();
    const noLogs = await makeInstance(db.owner, { userId });
    expect(
      (await findInstanceWithLogsByTokenHash(db.owner, noLogs.access_token_hash))?.logs,
    ).toEqual([]);
  });

  it('marks running instances past expires_at expired and returns what to stop', async () => {
    const due = await makeInstance(db.owner, {
      userId,
      nodeId,
      expiresAt: new Date(Date.now() - 1000),
    });
    const notDue = await makeInstance(db.owner, { userId, nodeId });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'running', process_id = 4242 WHERE id IN (${due.id}, ${notDue.id})`,
    );
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET assigned_port = 3099 WHERE id = ${due.id}`,
    );

    const expired = await db.owner.transaction((tx) => markExpiredInstances(tx));
    expect(expired).toEqual([
      { id: due.id, user_id: userId, node_id: nodeId, process_id: 4242, assigned_port: 3099 },
    ]);
    expect(
      await db.owner.oneFirst(sql.unsafe`SELECT status FROM mcp_instances WHERE id = ${due.id}`),
    ).toBe('expired');
    expect(await db.owner.transaction((tx) => markExpiredInstances(tx))).toEqual([]);
  });

  it('lists running processes for the health check', async () => {
    const running = await makeInstance(db.owner, { userId, nodeId });
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET status = 'running', process_id = 777 WHERE id = ${running.id}`,
    );
    const rows = await listRunningProcesses(db.owner, nodeId);
    expect(rows.map((r) => [r.id, r.process_id])).toContainEqual([running.id, 777]);
    expect(rows.every((r) => r.status === 'running')).toBe(true);
  });

  it('finds, allocates and releases a port of a node', async () => {
    const node = await makeNode(db.owner, { portRangeStart: 4001, portRangeEnd: 4003 });
    const instance = await makeInstance(db.owner, { userId, nodeId: node.id });
    expect(await findNextFreePort(db.owner, node.id)).toBe(4001);
    expect(await allocatePort(db.owner, node.id, 4001, instance.id)).toBe(true);
    expect(await findNextFreePort(db.owner, node.id)).toBe(4002);
    const other = await makeInstance(db.owner, { userId, nodeId: node.id });
    expect(await allocatePort(db.owner, node.id, 4001, other.id)).toBe(false);
    await releasePort(db.owner, node.id, 4001);
    expect(await findNextFreePort(db.owner, node.id)).toBe(4001);
    expect(await countPorts(db.owner, node.id)).toEqual({
      node_id: node.id,
      free: 3,
      used: 0,
      oldest_health_check: null,
      newest_health_check: null,
      never_checked: 0,
    });
  });
});
