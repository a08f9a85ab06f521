// mcp_logs and mcp_events are partitioned by month; the maintenance function
// creates the coming months and drops those past retention.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertEvent } from '../../../core/db/events.js';
import { insertLogs } from '../../support/queries.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';
import { makeInstance, makeUser } from '../../support/fixtures.js';

const partitionName = (table: string, date: Date) =>
  `${table}_p${date.getUTCFullYear()}_${String(date.getUTCMonth() + 1).padStart(2, '0')}`;

const monthsFromNow = (months: number) => {
  const now = new Date();
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + months, 15));
};

describe('monthly partitions', () => {
  let db: TestDatabase;
  let instanceId: string;
  let userId: string;

  const partitions = async (table: string) =>
    (
      await db.owner.any(
        sql.type(z.object({ relname: z.string() }))`
          SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
          WHERE i.inhparent = ${table}::regclass ORDER BY 1`,
      )
    ).map((r) => r.relname);

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    instanceId = (await makeInstance(db.owner, { userId })).id;
  });
  afterAll(() => db.drop());

  it('has partitions from last month to three months ahead after migrating', async () => {
    for (const table of ['mcp_logs', 'mcp_events']) {
      const names = await partitions(table);
      for (let m = -1; m <= 3; m++) expect(names).toContain(partitionName(table, monthsFromNow(m)));
    }
  });

  it('puts each row in the partition of its month', async () => {
    const thisMonth = monthsFromNow(0);
    const nextMonth = monthsFromNow(1);
    await insertLogs(db.owner, [
      { instanceId, timestamp: thisMonth, level: 'info', source: 'process', message: 'now' },
      { instanceId, timestamp: nextMonth, level: 'warn', source: 'system', message: 'later' },
    ]);
    const placed = await db.owner.any(
      sql.type(z.object({ part: z.string(), message: z.string() }))`
        SELECT tableoid::regclass::text AS part, message FROM mcp_logs ORDER BY timestamp`,
    );
    expect(placed).toEqual([
      { part: partitionName('mcp_logs', thisMonth), message: 'now' },
      { part: partitionName('mcp_logs', nextMonth), message: 'later' },
    ]);
    await insertEvent(db.owner, { instanceId, userId, type: 'created' });
    const eventPart = await db.owner.oneFirst(
      sql.unsafe`SELECT tableoid::regclass::text FROM mcp_events`,
    );
    expect(eventPart).toBe(partitionName('mcp_events', thisMonth));
  });

  it('creates partitions further ahead on demand', async () => {
    const created = await db.owner.any(
      sql.type(z.object({ action: z.string(), partition_name: z.string() }))`
        SELECT * FROM minimcp_maintain_partitions(6, 36500)`,
    );
    const names = created.filter((r) => r.action === 'created').map((r) => r.partition_name);
    expect(names).toEqual(
      expect.arrayContaining([
        partitionName('mcp_logs', monthsFromNow(6)),
        partitionName('mcp_events', monthsFromNow(4)),
      ]),
    );
    expect(await partitions('mcp_logs')).toContain(partitionName('mcp_logs', monthsFromNow(6)));
  });

  it('drops the partitions past retention and keeps the rest', async () => {
    const old = monthsFromNow(-14);
    await db.owner.query(
      sql.unsafe`SELECT minimcp_ensure_month_partition('mcp_logs', ${old.toISOString().slice(0, 10)}::date)`,
    );
    await insertLogs(db.owner, [
      { instanceId, timestamp: old, level: 'info', source: 'process', message: 'ancient' },
    ]);
    expect(await partitions('mcp_logs')).toContain(partitionName('mcp_logs', old));

    const result = await db.owner.any(
      sql.type(
        z.object({ action: z.string(), partition_name: z.string() }),
      )`SELECT * FROM minimcp_maintain_partitions(3, 90)`,
    );
    expect(result.filter((r) => r.action === 'dropped').map((r) => r.partition_name)).toEqual([
      partitionName('mcp_logs', old),
    ]);
    expect(await partitions('mcp_logs')).not.toContain(partitionName('mcp_logs', old));
    expect(
      await db.owner.oneFirst(
        sql.unsafe`SELECT count(*)::int FROM mcp_logs WHERE message = 'ancient'`,
      ),
    ).toBe(0);
    expect(
      await db.owner.oneFirst(sql.unsafe`SELECT count(*)::int FROM mcp_logs WHERE message = 'now'`),
    ).toBe(1);
  });

  it('can be run by the application roles and twice at once', async () => {
    const runs = await Promise.all([
      db.app.any(sql.unsafe`SELECT * FROM minimcp_maintain_partitions(8, 36500)`),
      db.app.any(sql.unsafe`SELECT * FROM minimcp_maintain_partitions(8, 36500)`),
    ]);
    const createdTotal = runs.flat().length;
    expect(createdTotal).toBe(4); // months 7 and 8, for two tables, created by exactly one of the runs
  });
});
