// Runs queries as a user (so row-level security applies) or as the system.
// The settings are transaction-local (set_config(..., true)): they vanish at
// commit and never leak to the next user of a pooled connection.
import { sql, type DatabasePool, type DatabaseTransactionConnection } from 'slonik';

export type Transaction = DatabaseTransactionConnection;

export async function asUser<T>(
  pool: DatabasePool,
  userId: string,
  work: (tx: Transaction) => Promise<T>,
): Promise<T> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT set_config('minimcp.user_id', ${userId}, true)`);
    return work(tx);
  });
}

/** For system work across users: the maintenance job, node placement. */
export async function asSystem<T>(
  pool: DatabasePool,
  work: (tx: Transaction) => Promise<T>,
): Promise<T> {
  return pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`SELECT set_config('minimcp.scope', 'system', true)`);
    return work(tx);
  });
}
