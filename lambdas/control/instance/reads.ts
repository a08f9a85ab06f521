// The instance service's reads: one instance, a user's instances, and an
// instance's logs and events, each page keyset-paginated and newest first.
import { listEventsPage } from '../../../core/db/events.js';
import { listInstanceDetails } from '../db/instance-details.js';
import { listLogs } from '../../../core/db/logs.js';
import type { InstanceStatus, LogLevel } from '../../../core/domain.js';
import { asUser } from '../db/user-context.js';
import { findOwnInstance, type InstanceServiceDeps } from './deps.js';
import {
  checkLimit,
  cursorPosition,
  page,
  toEventView,
  toLogView,
  toView,
  type EventView,
  type InstanceView,
  type LogView,
  type Page,
} from './views.js';

export interface ListInstancesQuery {
  status?: InstanceStatus;
  type?: string;
  cursor?: string;
  limit: number;
}

export interface LogsQuery {
  level?: LogLevel;
  since?: Date;
  until?: Date;
  /** Case-insensitive substring of the message. */
  text?: string;
  cursor?: string;
  limit: number;
}

export async function getInstance(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
): Promise<InstanceView> {
  return toView(await asUser(deps.pool, userId, (tx) => findOwnInstance(tx, id)));
}

export async function listInstances(
  deps: InstanceServiceDeps,
  userId: string,
  query: ListInstancesQuery,
): Promise<Page<InstanceView>> {
  checkLimit(query.limit);
  const before = cursorPosition('instances', query.cursor);
  const rows = await asUser(deps.pool, userId, (tx) =>
    listInstanceDetails(tx, {
      userId,
      ...(query.status ? { status: query.status } : {}),
      ...(query.type ? { typeName: query.type } : {}),
      ...(before ? { before } : {}),
      limit: query.limit + 1,
    }),
  );
  return page(rows, query.limit, 'instances', (r) => ({ at: r.cursor_at, id: r.id }), toView);
}

export async function listInstanceLogs(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  query: LogsQuery,
): Promise<Page<LogView>> {
  checkLimit(query.limit);
  const before = cursorPosition('logs', query.cursor);
  const rows = await asUser(deps.pool, userId, async (tx) => {
    await findOwnInstance(tx, id);
    return listLogs(tx, {
      instanceId: id,
      ...(query.level ? { level: query.level } : {}),
      ...(query.since ? { since: query.since } : {}),
      ...(query.until ? { until: query.until } : {}),
      ...(query.text ? { text: query.text } : {}),
      // Log timestamps are written from JavaScript Dates: milliseconds are exact.
      ...(before ? { before: { timestamp: new Date(before.at), id: before.id } } : {}),
      limit: query.limit + 1,
    });
  });
  return page(
    rows,
    query.limit,
    'logs',
    (r) => ({ at: r.timestamp.toISOString(), id: r.id }),
    toLogView,
  );
}

export async function listInstanceEvents(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  query: { cursor?: string; limit: number },
): Promise<Page<EventView>> {
  checkLimit(query.limit);
  const before = cursorPosition('events', query.cursor);
  const rows = await asUser(deps.pool, userId, async (tx) => {
    await findOwnInstance(tx, id);
    return listEventsPage(tx, {
      instanceId: id,
      ...(before ? { before } : {}),
      limit: query.limit + 1,
    });
  });
  return page(rows, query.limit, 'events', (r) => ({ at: r.cursor_at, id: r.id }), toEventView);
}
