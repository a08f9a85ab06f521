// mcp_logs: captured lines of MCP servers, agent records and gateway access
// records. Writes are batched: one INSERT ... SELECT FROM unnest(...) per batch,
// its seven columns sent as seven binary arrays built here in one pass each (no
// object or parameter per line, and nothing parsed back: the INSERT returns no rows).
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
 * Log lines as columns, index i of every array being line i: how the agent
 * queues and writes lines without keeping an object per line.
 */
export interface LogColumns {
  readonly ids: readonly string[];
  readonly instanceIds: readonly string[];
  /** Epoch milliseconds. */
  readonly timestamps: readonly number[];
  readonly levels: readonly LogLevel[];
  readonly sources: readonly LogSource[];
  readonly messages: readonly string[];
  readonly metadata: readonly (JsonObject | undefined)[];
}

// The arrays go in PostgreSQL's binary array format (what array_send writes):
// no quoting or escaping here, no text parsing there, and each is one Buffer
// the driver copies as is.
const OID = { text: 25, uuid: 2950, float8: 701, jsonb: 3802 } as const;
const ARRAY_HEADER_BYTES = 20;

function startArray(bytes: number, length: number, elementOid: number, hasNulls: boolean): Buffer {
  const buffer = Buffer.allocUnsafe(ARRAY_HEADER_BYTES + bytes);
  buffer.writeInt32BE(1, 0); // dimensions
  buffer.writeInt32BE(hasNulls ? 1 : 0, 4);
  buffer.writeInt32BE(elementOid, 8);
  buffer.writeInt32BE(length, 12);
  buffer.writeInt32BE(1, 16); // lower bound
  return buffer;
}

/** Writes a uuid's 16 bytes; consecutive ids mostly share their first 10 (see the shipper's ids). */
function createUuidWriter(): (buffer: Buffer, offset: number, id: string) => void {
  let prefix = '';
  const prefixBytes = Buffer.alloc(10);
  return (buffer, offset, id) => {
    if (id.length !== 36 || id[8] !== '-' || id[13] !== '-' || id[18] !== '-' || id[23] !== '-')
      throw new TypeError(`not a uuid: ${JSON.stringify(id.slice(0, 40))}`);
    const head = id.slice(0, 24);
    if (head !== prefix) {
      const hex = id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23);
      if (prefixBytes.write(hex, 0, 10, 'hex') !== 10)
        throw new TypeError(`not a uuid: ${JSON.stringify(id)}`);
      prefix = head;
    }
    prefixBytes.copy(buffer, offset);
    if (buffer.write(id.slice(24), offset + 10, 6, 'hex') !== 6) {
      prefix = '';
      throw new TypeError(`not a uuid: ${JSON.stringify(id)}`);
    }
  };
}

function uuidArray(values: readonly string[], from: number, to: number): Buffer {
  const buffer = startArray((to - from) * 20, to - from, OID.uuid, false);
  const write = createUuidWriter();
  let offset = ARRAY_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    buffer.writeInt32BE(16, offset);
    write(buffer, offset + 4, values[i]!);
    offset += 20;
  }
  return buffer;
}

function float8Array(values: readonly number[], from: number, to: number): Buffer {
  const buffer = startArray((to - from) * 12, to - from, OID.float8, false);
  let offset = ARRAY_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    buffer.writeInt32BE(8, offset);
    buffer.writeDoubleBE(values[i]!, offset + 4);
    offset += 12;
  }
  return buffer;
}

/**
 * text[] (or jsonb[] with `jsonb`: each element is version byte 1 and the
 * JSON text). NUL, which PostgreSQL text cannot hold, becomes U+FFFD.
 */
function textArray(
  values: readonly (string | undefined)[],
  from: number,
  to: number,
  elementOid: number = OID.text,
): Buffer {
  let bound = 0;
  let hasNulls = false;
  for (let i = from; i < to; i++) {
    const value = values[i];
    if (value === undefined) hasNulls = true;
    // A UTF-16 unit is at most 3 UTF-8 bytes.
    else bound += value.length * 3;
  }
  const jsonb = elementOid === OID.jsonb;
  const buffer = startArray(bound + (to - from) * 5, to - from, elementOid, hasNulls);
  let offset = ARRAY_HEADER_BYTES;
  for (let i = from; i < to; i++) {
    let value = values[i];
    if (value === undefined) {
      buffer.writeInt32BE(-1, offset);
      offset += 4;
      continue;
    }
    if (value.includes('\0')) value = value.replaceAll('\0', '\uFFFD');
    let start = offset + 4;
    if (jsonb) buffer[start++] = 1;
    const bytes = buffer.write(value, start);
    buffer.writeInt32BE(start + bytes - offset - 4, offset);
    offset = start + bytes;
  }
  return buffer.subarray(0, offset);
}

/**
 * Inserts lines `from`..`to` (exclusive) of `columns` in one statement;
 * returns how many landed. With `skipExisting`, lines whose id is already
 * stored are skipped, so replaying a batch is harmless; without it (lines
 * never sent before) the statement skips that per-row check and a stored id
 * fails it with a unique violation. Timestamps travel as epoch milliseconds
 * and convert the same way every time, so a replayed line matches its key.
 */
export async function insertLogColumns(
  db: CommonQueryMethods,
  columns: LogColumns,
  options: { from?: number; to?: number; skipExisting: boolean },
): Promise<number> {
  const from = options.from ?? 0;
  const to = options.to ?? columns.ids.length;
  if (to <= from) return 0;
  const metadata = columns.metadata
    .slice(from, to)
    .map((value) => (value === undefined ? undefined : JSON.stringify(value)));
  const onConflict = options.skipExisting
    ? sql.fragment`ON CONFLICT (id, timestamp) DO NOTHING`
    : sql.fragment``;
  const result = await db.query(sql.unsafe`
    INSERT INTO mcp_logs (id, mcp_instance_id, timestamp, level, source, message, metadata)
    SELECT id, instance_id, to_timestamp(at_ms / 1000), level, source, message,
           coalesce(metadata, '{}')
    FROM unnest(
      ${sql.binary(uuidArray(columns.ids, from, to))}::uuid[],
      ${sql.binary(uuidArray(columns.instanceIds, from, to))}::uuid[],
      ${sql.binary(float8Array(columns.timestamps, from, to))}::float8[],
      ${sql.binary(textArray(columns.levels, from, to))}::text[],
      ${sql.binary(textArray(columns.sources, from, to))}::text[],
      ${sql.binary(textArray(columns.messages, from, to))}::text[],
      ${sql.binary(textArray(metadata, 0, to - from, OID.jsonb))}::jsonb[]
    ) AS line(id, instance_id, at_ms, level, source, message, metadata)
    ${onConflict}
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
