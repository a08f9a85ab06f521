// mcp_logs: captured lines of MCP servers, agent records and gateway access
// records. Writes are batched: one INSERT ... SELECT FROM unnest(...) per batch.
import { randomUUID } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { LogSource } from '../domain.js';
import { JsonObject, LogLevel } from '../domain.js';

export interface NewLogEntry {
  /** Chosen by the writer so a retried batch lands once (ON CONFLICT DO NOTHING). */
  id?: string;
  instanceId: string;
  timestamp: Date;
  level: LogLevel;
  source: LogSource;
  message: string;
  metadata?: JsonObject;
}

/**
 * Inserts many lines in one statement; returns how many landed. Lines whose
 * id is already stored are skipped, so replaying a batch is harmless.
 */
export async function insertLogs(
  db: CommonQueryMethods,
  entries: readonly NewLogEntry[],
): Promise<number> {
  if (entries.length === 0) return 0;
  const result = await db.query(sql.unsafe`
    INSERT INTO mcp_logs (id, mcp_instance_id, timestamp, level, source, message, metadata)
    SELECT * FROM ${sql.unnest(
      entries.map((e) => [
        e.id ?? randomUUID(),
        e.instanceId,
        e.timestamp.toISOString(),
        e.level,
        e.source,
        e.message,
        JSON.stringify(e.metadata ?? {}),
      ]),
      ['uuid', 'uuid', 'timestamptz', 'text', 'text', 'text', 'jsonb'],
    )}
    ON CONFLICT (id, timestamp) DO NOTHING
  `);
  return result.rowCount;
}

export const LogRow = z.object({
  id: z.string().uuid(),
  mcp_instance_id: z.string().uuid(),
  timestamp: z.date(),
  level: LogLevel,
  source: z.string().nullable(),
  message: z.string(),
  metadata: JsonObject.nullable(),
});
export type LogRow = z.infer<typeof LogRow>;

export interface LogQuery {
  instanceId: string;
  level?: LogLevel;
  since?: Date;
  until?: Date;
  /** Case-insensitive substring of the message. */
  text?: string;
  /** Continue after this (timestamp, id), newest first. */
  before?: { timestamp: Date; id: string };
  limit: number;
}

/** Newest first, keyset-paginated on (timestamp, id). */
export async function listLogs(
  db: CommonQueryMethods,
  query: LogQuery,
): Promise<readonly LogRow[]> {
  const conditions = [sql.fragment`mcp_instance_id = ${query.instanceId}`];
  if (query.level) conditions.push(sql.fragment`level = ${query.level}`);
  if (query.since) conditions.push(sql.fragment`timestamp >= ${sql.timestamp(query.since)}`);
  if (query.until) conditions.push(sql.fragment`timestamp < ${sql.timestamp(query.until)}`);
  if (query.text) {
    const pattern = '%' + query.text.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
    conditions.push(sql.fragment`message ILIKE ${pattern}`);
  }
  if (query.before) {
    conditions.push(
      sql.fragment`(timestamp, id) < (${sql.timestamp(query.before.timestamp)}, ${query.before.id}::uuid)`,
    );
  }
  return db.any(sql.type(LogRow)`
    SELECT id, mcp_instance_id, timestamp, level, source, message, metadata
    FROM mcp_logs
    WHERE ${sql.join(conditions, sql.fragment` AND `)}
    ORDER BY timestamp DESC, id DESC
    LIMIT ${query.limit}
  `);
}
