// What one mcp_logs row costs PostgreSQL: the agent's own INSERT (core/db/logs.ts,
// 10,000-row batches, as the agent role) timed by the backend's CPU from /proc,
// on mcp_logs as the schema writes it, then without its foreign key, then with
// its primary key only. The schema's cost is the ceiling of the log-ingest
// figure on a small machine; the other two say where that cost is.
import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertLogColumns, type LogColumns } from '../../core/db/logs.js';
import { createDatabasePool } from '../../core/db/pool.js';
import type { LogLevel, LogSource } from '../../core/domain.js';
import { makeNode, makeUser } from '../../test/support/fixtures.js';
import { createInstanceRow } from '../../test/support/instances.js';
import { cpuSeconds } from './proc.js';
import type { BenchContext } from './stack.js';

const INSTANCES = 100;
const ROWS_PER_BATCH = 10_000;
const BATCHES = 20;

export interface LogRowCost {
  /** Its name in results.json (row_cost_us.<key>). */
  key: 'schema' | 'no_fk' | 'pk_only';
  variant: string;
  /** The backend's CPU per row, in µs. */
  microsPerRow: number;
}

export async function measureLogRowCost(ctx: BenchContext): Promise<LogRowCost[]> {
  const db = await ctx.database();
  await makeNode(db.owner);
  const user = await makeUser(db.owner);
  const instanceIds: string[] = [];
  for (let i = 0; i < INSTANCES; i++)
    instanceIds.push((await createInstanceRow(db.owner, { userId: user.id })).id);
  const agent = await createDatabasePool(db.agentUrl, { maximumPoolSize: 1 });
  ctx.cleanup.defer('close the row-cost pool', () => agent.end());

  // Ids the way the agent's shipper makes them: a random prefix and a counter.
  const prefix = randomUUID().slice(0, 24);
  let counter = 0;
  const batch = (): LogColumns => {
    const now = Date.now();
    const ids: string[] = [];
    const messages: string[] = [];
    for (let i = 0; i < ROWS_PER_BATCH; i++) {
      ids.push(prefix + (counter++).toString(16).padStart(12, '0'));
      messages.push(`flood ${i % INSTANCES} ${counter} ${now}.123 ${'x'.repeat(60)}`);
    }
    return {
      ids,
      instanceIds: ids.map((_, i) => instanceIds[i % INSTANCES]!),
      timestamps: ids.map((_, i) => now + i / 10),
      levels: ids.map((): LogLevel => 'info'),
      sources: ids.map((): LogSource => 'process'),
      messages,
      metadata: ids.map(() => undefined),
    };
  };

  const measure = async (key: LogRowCost['key'], variant: string): Promise<LogRowCost> =>
    agent.connect(async (connection) => {
      const pid = await connection.oneFirst(sql.type(z.object({ pid: z.number() }))`
        SELECT pg_backend_pid() AS pid`);
      const batches = Array.from({ length: BATCHES }, batch);
      const before = cpuSeconds(pid) ?? Number.NaN;
      for (const columns of batches)
        await insertLogColumns(connection, columns, { skipExisting: false });
      const used = (cpuSeconds(pid) ?? Number.NaN) - before;
      return { key, variant, microsPerRow: (used / (BATCHES * ROWS_PER_BATCH)) * 1e6 };
    });

  const results: LogRowCost[] = [];
  ctx.log('log-ingest: PostgreSQL cost per row');
  results.push(await measure('schema', 'mcp_logs as the schema writes it'));
  const foreignKeys = await db.owner.anyFirst(sql.type(z.object({ name: z.string() }))`
    SELECT conname AS name FROM pg_constraint
    WHERE conrelid = 'mcp_logs'::regclass AND contype = 'f'`);
  for (const name of foreignKeys)
    await db.owner.query(
      sql.unsafe`ALTER TABLE mcp_logs DROP CONSTRAINT ${sql.identifier([name])}`,
    );
  results.push(await measure('no_fk', 'without its foreign key'));
  const indexes = await db.owner.anyFirst(sql.type(z.object({ name: z.string() }))`
    SELECT indexrelid::regclass::text AS name FROM pg_index
    WHERE indrelid = 'mcp_logs'::regclass AND NOT indisprimary`);
  for (const name of indexes)
    await db.owner.query(sql.unsafe`DROP INDEX ${sql.identifier([name])}`);
  results.push(await measure('pk_only', 'primary key only (no foreign key, no other index)'));
  return results;
}
