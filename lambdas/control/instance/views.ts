// What the instance service answers: an instance, a log line or an event as
// its owner sees it (never the token or its hash), and keyset-paginated pages.
import type { InstanceDetailRow } from '../db/instance-details.js';
import type { EventPageRow } from '../../../core/db/events.js';
import type { LogRow } from '../../../core/db/logs.js';
import type { InstanceStatus, JsonObject, LogLevel } from '../../../core/domain.js';
import { ValidationError } from '../../../core/errors.js';
import { decodeCursor, encodeCursor, type CursorKind, type CursorPosition } from '../cursor.js';

export const MAX_PAGE_SIZE = 100;

/** An instance as its owner sees it: never the token or its hash. */
export interface InstanceView {
  id: string;
  type: string;
  status: InstanceStatus;
  accessUrl: string;
  /** The first characters of the access token, to tell tokens apart. */
  tokenPrefix: string;
  nodeId: string | null;
  nodeName: string | null;
  port: number | null;
  expiresAt: Date;
  lastAccessed: Date | null;
  config: JsonObject;
  stats: JsonObject;
  errorMessage: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface LogView {
  id: string;
  timestamp: Date;
  level: LogLevel;
  source: string | null;
  message: string;
  metadata: JsonObject;
}

export interface EventView {
  id: string;
  type: string;
  data: JsonObject;
  ipAddress: string | null;
  userAgent: string | null;
  createdAt: Date;
}

export interface Page<T> {
  items: T[];
  /** Pass it back for the next (older) page; null on the last one. */
  nextCursor: string | null;
}

export function toView(row: InstanceDetailRow): InstanceView {
  return {
    id: row.id,
    type: row.type_name,
    status: row.status,
    accessUrl: row.access_url,
    tokenPrefix: row.access_token_prefix,
    nodeId: row.node_id,
    nodeName: row.node_name,
    port: row.assigned_port,
    expiresAt: row.expires_at,
    lastAccessed: row.last_accessed,
    config: row.config ?? {},
    stats: row.stats ?? {},
    errorMessage: row.error_message,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export function toLogView(row: LogRow): LogView {
  return {
    id: row.id,
    timestamp: row.timestamp,
    level: row.level,
    source: row.source,
    message: row.message,
    metadata: row.metadata ?? {},
  };
}

export function toEventView(row: EventPageRow): EventView {
  return {
    id: row.id,
    type: row.event_type,
    data: row.event_data ?? {},
    ipAddress: row.ip_address,
    userAgent: row.user_agent,
    createdAt: row.created_at,
  };
}

export function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
    throw new ValidationError(`limit must be between 1 and ${MAX_PAGE_SIZE}, got ${limit}`, {
      limit,
    });
}

export function cursorPosition(
  kind: CursorKind,
  cursor: string | undefined,
): CursorPosition | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(kind, cursor);
  if (!decoded.ok) throw new ValidationError(decoded.message, {});
  return decoded.value;
}

/** One more row than asked tells whether another page follows. */
export function page<R, T>(
  rows: readonly R[],
  limit: number,
  kind: CursorKind,
  position: (row: R) => CursorPosition,
  view: (row: R) => T,
): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(view),
    nextCursor:
      rows.length > limit && last !== undefined ? encodeCursor(kind, position(last)) : null,
  };
}
