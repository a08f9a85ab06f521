// Retention (cleanup.retention_days, "logs and expired instances"): ended
// instances past retention are removed with their logs, events and port
// holds, in bounded batches; anything younger, still live, or with a young
// audit entry stays. Rows of various ages, in a real database, through the
// API's role in system scope, and through the maintenance job.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertEvent } from '../../../../../core/db/events.js';
import { claimFreePort } from '../../../../../core/db/ports.js';
import { createLogger } from '../../../../../core/logger.js';
import { purgeEndedInstances } from '../../../../../lambdas/control/db/instance-purge.js';
import { asSystem } from '../../../../../lambdas/control/db/user-context.js';
import { runMaintenance } from '../../../../../lambdas/control/maintenance.js';
import { noAgents } from '../../../../support/api.js';
import { createTestDatabase, type TestDatabase } from '../../../../support/database.js';
import { makeInstance, makeNode, makeUser } from '../../../../support/fixtures.js';
import { insertLogs, putSetting } from '../../../../support/queries.js';

let db: TestDatabase;
let userId: string;
let nodeId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  userId = (await makeUser(db.owner)).id;
  nodeId = (await makeNode(db.owner, { portRangeStart: 5001, portRangeEnd: 5020 })).id;
  // Events as old as the oldest rows below need their month's partition.
  await db.owner.query(sql.unsafe`
    SELECT minimcp_ensure_month_partition(t, (now() - make_interval(days => d))::date)
    FROM generate_series(0, 130, 10) AS d, unnest(ARRAY['mcp_events', 'mcp_logs']) AS t
  `);
});
afterAll(() => db?.drop());
beforeEach(async () => {
  await db.owner.query(sql.unsafe`DELETE FROM mcp_instances`);
  await putSetting(db.owner, 'cleanup.retention_days', 30);
});

interface Aged {
  status?: 'pending' | 'running' | 'expired' | 'error' | 'disconnected';
  /** Days ago; null: not deleted. */
  deletedDaysAgo?: number | null;
  expiredDaysAgo: number;
  changedDaysAgo: number;
  /** Ages of its events, in days. */
  eventsDaysAgo?: number[];
}

/** An instance with the given ages; updated_at set with the touch trigger off. */
async function aged(input: Aged): Promise<string> {
  const instance = await makeInstance(db.owner, { userId, nodeId });
  const daysAgo = (days: number) => sql.fragment`now() - make_interval(days => ${days})`;
  await db.owner.transaction(async (tx) => {
    await tx.query(sql.unsafe`ALTER TABLE mcp_instances DISABLE TRIGGER touch_mcp_instances`);
    await tx.query(sql.unsafe`
      UPDATE mcp_instances SET
        status = ${input.status ?? 'expired'},
        expires_at = ${daysAgo(input.expiredDaysAgo)},
        deleted_at = ${input.deletedDaysAgo == null ? null : daysAgo(input.deletedDaysAgo)},
        updated_at = ${daysAgo(input.changedDaysAgo)}
      WHERE id = ${instance.id}
    `);
    await tx.query(sql.unsafe`ALTER TABLE mcp_instances ENABLE TRIGGER touch_mcp_instances`);
  });
  for (const days of input.eventsDaysAgo ?? [input.changedDaysAgo]) {
    const event = await insertEvent(db.owner, { instanceId: instance.id, userId, type: 'created' });
    await db.owner.query(sql.unsafe`
      UPDATE mcp_events SET created_at = ${daysAgo(days)} WHERE id = ${event.id}
    `);
  }
  return instance.id;
}

const Ids = z.object({ id: z.string() });

async function remaining(): Promise<Set<string>> {
  const rows = await db.owner.any(sql.type(Ids)`SELECT id FROM mcp_instances`);
  return new Set(rows.map((r) => r.id));
}

async function countOf(table: 'mcp_logs' | 'mcp_events', instanceId: string): Promise<number> {
  return db.owner.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM ${sql.identifier([table])} WHERE mcp_instance_id = ${instanceId}
  `);
}

describe('purgeEndedInstances', () => {
  it('removes only ended instances past retention, with their logs and events, and frees their ports', async () => {
    const deletedLongAgo = await aged({
      deletedDaysAgo: 40,
      expiredDaysAgo: 41,
      changedDaysAgo: 40,
    });
    const expiredLongAgo = await aged({ expiredDaysAgo: 45, changedDaysAgo: 44 });
    const failedLongAgo = await aged({ status: 'error', expiredDaysAgo: 60, changedDaysAgo: 60 });
    const deletedRecently = await aged({
      deletedDaysAgo: 10,
      expiredDaysAgo: 12,
      changedDaysAgo: 10,
    });
    const expiredButTouched = await aged({ expiredDaysAgo: 45, changedDaysAgo: 5 });
    const runningPastExpiry = await aged({
      status: 'running',
      expiredDaysAgo: 40,
      changedDaysAgo: 40,
    });
    const youngAuditEntry = await aged({
      deletedDaysAgo: 40,
      expiredDaysAgo: 41,
      changedDaysAgo: 40,
      eventsDaysAgo: [40, 3],
    });
    const youngLogLine = await aged({ deletedDaysAgo: 40, expiredDaysAgo: 41, changedDaysAgo: 40 });
    const line = (instanceId: string, daysAgo: number) => ({
      instanceId,
      timestamp: new Date(Date.now() - daysAgo * 86_400_000),
      level: 'info' as const,
      source: 'process' as const,
      message: 'a line',
    });
    await insertLogs(db.owner, [
      line(deletedLongAgo, 40),
      line(youngLogLine, 40),
      line(youngLogLine, 2),
    ]);
    // A port still held by one of them (a release that never happened).
    await asSystem(db.owner, (tx) => claimFreePort(tx, nodeId, deletedLongAgo));

    const purged = await asSystem(db.app, (tx) => purgeEndedInstances(tx, 30, 500));

    expect(new Set(purged)).toEqual(new Set([deletedLongAgo, expiredLongAgo, failedLongAgo]));
    expect(await remaining()).toEqual(
      new Set([
        deletedRecently,
        expiredButTouched,
        runningPastExpiry,
        youngAuditEntry,
        youngLogLine,
      ]),
    );
    expect(await countOf('mcp_logs', deletedLongAgo)).toBe(0);
    expect(await countOf('mcp_events', deletedLongAgo)).toBe(0);
    expect(await countOf('mcp_events', youngAuditEntry)).toBe(2);
    expect(await countOf('mcp_logs', youngLogLine)).toBe(2);
    const held = await db.owner.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*)::int AS n FROM port_allocations
      WHERE node_id = ${nodeId} AND (NOT is_available OR mcp_instance_id IS NOT NULL)
    `);
    expect(held).toBe(0);
  });

  it('works in bounded batches, oldest change first', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++)
      ids.push(await aged({ expiredDaysAgo: 90, changedDaysAgo: 80 - i }));

    const first = await asSystem(db.app, (tx) => purgeEndedInstances(tx, 30, 2));
    expect(first).toEqual([ids[0], ids[1]]);
    const second = await asSystem(db.app, (tx) => purgeEndedInstances(tx, 30, 2));
    expect(second).toEqual([ids[2], ids[3]]);
    const third = await asSystem(db.app, (tx) => purgeEndedInstances(tx, 30, 2));
    expect(third).toEqual([ids[4]]);
    expect(await asSystem(db.app, (tx) => purgeEndedInstances(tx, 30, 2))).toEqual([]);
  });

  it('sees nothing outside system scope (row-level security)', async () => {
    const old = await aged({ deletedDaysAgo: 40, expiredDaysAgo: 41, changedDaysAgo: 40 });
    const purged = await db.app.transaction(async (tx) => {
      await tx.query(sql.unsafe`SELECT set_config('minimcp.user_id', ${randomUUID()}, true)`);
      return purgeEndedInstances(tx, 30, 500);
    });
    expect(purged).toEqual([]);
    expect(await remaining()).toEqual(new Set([old]));
  });
});

describe('the maintenance job', () => {
  it('purges with the retention setting of the moment, and counts it in its summary', async () => {
    await aged({ deletedDaysAgo: 40, expiredDaysAgo: 41, changedDaysAgo: 40 });
    const tenDays = await aged({ deletedDaysAgo: 10, expiredDaysAgo: 11, changedDaysAgo: 10 });
    const twoDays = await aged({ expiredDaysAgo: 3, changedDaysAgo: 2 });
    const run = () =>
      runMaintenance({
        pool: db.app,
        agents: noAgents,
        config: { nodeStaleSeconds: 30, batchSize: 500 },
        logger: createLogger({ level: 'silent' }),
      });

    expect((await run()).purged).toBe(1);
    expect(await remaining()).toEqual(new Set([tenDays, twoDays]));

    await putSetting(db.owner, 'cleanup.retention_days', 7);
    expect((await run()).purged).toBe(1);
    expect(await remaining()).toEqual(new Set([twoDays]));
  });
});
