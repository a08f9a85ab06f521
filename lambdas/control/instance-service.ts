// The domain logic of instances behind /v1/instances: create, read, list,
// delete, extend, restore, rotate the token, read logs and events. It writes
// the desired state (rows, ports, events, one transaction per change, as the
// user so row-level security applies) and then tells the node's agent, within
// a bounded wait; the agent's reconcile loop finishes whatever that misses.
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import type { DatabasePool } from 'slonik';
import { z } from 'zod';
import type { InstanceState, StartReason, StopReason } from '../../core/agent-contract.js';
import type { AgentResolver } from './agent-registry.js';
import { decodeCursor, encodeCursor, type CursorKind, type CursorPosition } from './cursor.js';
import { findUsableApiKey } from '../../core/db/api-keys.js';
import { findFirstEventData, insertEvent, listEventsPage } from '../../core/db/events.js';
import {
  countLiveInstancesOfUser,
  findInstanceDetail,
  insertInstance,
  listInstanceDetails,
  lockUserInstances,
  reassignInstance,
  setInstanceExpiry,
  setInstancePort,
  setInstanceToken,
  softDeleteInstance,
  type InstanceDetailRow,
} from '../../core/db/instances.js';
import { listLogs } from '../../core/db/logs.js';
import { findTypeByName, getTypeById, type McpTypeRow } from '../../core/db/mcp-types.js';
import { placeInstance, type CandidateNode } from './db/placement.js';
import { releasePortsOfInstance } from '../../core/db/ports.js';
import { getSettings } from '../../core/db/settings.js';
import { asUser, type Transaction } from './db/user-context.js';
import type { InstanceStatus, JsonObject, LogLevel } from '../../core/domain.js';
import {
  ConflictError,
  InstanceLimitError,
  KeyMissingError,
  NotFoundError,
  ValidationError,
} from '../../core/errors.js';
import { resolveInstanceConfig } from './instance-config.js';
import type { Logger } from '../../core/logger.js';
import { issueToken } from '../../core/tokens.js';

/** The schema's upper bound of max_duration_minutes (a year), for types that leave it null. */
const MAX_DURATION_MINUTES = 525_600;
/** Time allowed on top of a wait for the agent's answer to travel back. */
const ANSWER_MARGIN_MS = 1_000;
const DEFAULT_NOTIFY_WAIT_MS = 3_000;
export const MAX_PAGE_SIZE = 100;

const MINUTE_MS = 60_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LIVE: ReadonlySet<InstanceStatus> = new Set(['pending', 'running']);
const RESTORABLE: ReadonlySet<InstanceStatus> = new Set(['expired', 'disconnected', 'error']);

export interface InstanceServiceConfig {
  /** Placement only picks nodes whose heartbeat is this fresh. */
  heartbeatFreshSeconds: number;
  /**
   * How long create and restore wait for the agent to report the instance
   * ready (plus a second for the answer). Past it the answer is `pending`.
   */
  startWaitMs: number;
  /** Bound of the best-effort calls: stop on delete, refresh on extend and token rotation. */
  notifyWaitMs?: number;
  /** The instance's access URL on a node and port; default `http://<public_host>:<port>/mcp`. */
  publicUrlFor?: (node: CandidateNode, port: number) => string;
}

export interface InstanceServiceOptions {
  /** The API's pool: row-level security applies to it. */
  pool: DatabasePool;
  agents: AgentResolver;
  config: InstanceServiceConfig;
  /** Now, for expiry arithmetic. */
  clock?: () => Date;
  /** Told about agent calls that failed where the job is left to the reconcile loop. */
  logger?: Logger;
}

/** Who asked, for the audit trail. */
export interface RequestMeta {
  /** The caller's address; anything that is not an IP address is not recorded. */
  ip?: string | null;
  userAgent?: string | null;
  /** Passed to the agent to correlate its logs. */
  requestId?: string;
}

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

/**
 * What the agent said after create or restore. `running`: ready (answer 201).
 * `pending`: slow, unreachable or timed out; the agent's reconcile loop
 * finishes the start (answer 202). `error`: the agent tried and failed; the
 * instance is left in `error` with the reason (answer with InstanceStartError,
 * 502; restoring it tries again).
 */
export type StartOutcome =
  | { status: 'running' | 'pending'; instance: InstanceView }
  | { status: 'error'; instance: InstanceView; error: { code: string; message: string } };

/** The access token is shown once, here, whatever the outcome. */
export type CreateOutcome = StartOutcome & { accessToken: string };

export interface CreateInstanceInput extends RequestMeta {
  userId: string;
  type: string;
  durationMinutes?: number;
  config?: JsonObject;
}

export interface Page<T> {
  items: T[];
  /** Pass it back for the next (older) page; null on the last one. */
  nextCursor: string | null;
}

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

export interface InstanceService {
  create(input: CreateInstanceInput): Promise<CreateOutcome>;
  get(userId: string, id: string): Promise<InstanceView>;
  list(userId: string, query: ListInstancesQuery): Promise<Page<InstanceView>>;
  /** Soft delete: afterwards the instance is not found. */
  delete(userId: string, id: string, meta?: RequestMeta): Promise<void>;
  extend(
    userId: string,
    id: string,
    change: { minutes: number },
    meta?: RequestMeta,
  ): Promise<InstanceView>;
  restore(userId: string, id: string, meta?: RequestMeta): Promise<StartOutcome>;
  /** The new token is shown once, here. */
  rotateToken(
    userId: string,
    id: string,
    meta?: RequestMeta,
  ): Promise<{ instance: InstanceView; accessToken: string }>;
  logs(userId: string, id: string, query: LogsQuery): Promise<Page<LogView>>;
  events(
    userId: string,
    id: string,
    query: { cursor?: string; limit: number },
  ): Promise<Page<EventView>>;
}

function toView(row: InstanceDetailRow): InstanceView {
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

function defaultPublicUrl(node: CandidateNode, port: number): string {
  const host = isIP(node.public_host) === 6 ? `[${node.public_host}]` : node.public_host;
  return `http://${host}:${port}/mcp`;
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`instance ${id} not found`, { instanceId: id });
}

function checkLimit(limit: number): void {
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE)
    throw new ValidationError(`limit must be between 1 and ${MAX_PAGE_SIZE}, got ${limit}`, {
      limit,
    });
}

function cursorPosition(kind: CursorKind, cursor: string | undefined): CursorPosition | undefined {
  if (cursor === undefined) return undefined;
  const decoded = decodeCursor(kind, cursor);
  if (!decoded.ok) throw new ValidationError(decoded.message, {});
  return decoded.value;
}

/** One more row than asked tells whether another page follows. */
function page<R, T>(
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

function auditMeta(meta: RequestMeta | undefined): {
  ipAddress: string | null;
  userAgent: string | null;
} {
  const ip = meta?.ip ?? null;
  return {
    ipAddress: ip !== null && isIP(ip) !== 0 ? ip : null,
    userAgent: meta?.userAgent ? meta.userAgent.slice(0, 1000) : null,
  };
}

function maxDurationOf(type: McpTypeRow): number {
  return type.max_duration_minutes ?? MAX_DURATION_MINUTES;
}

const CreatedData = z.object({ duration_minutes: z.number().int().positive() });

export function createInstanceService(options: InstanceServiceOptions): InstanceService {
  const { pool, agents, config, logger } = options;
  const clock = options.clock ?? (() => new Date());
  const notifyWaitMs = config.notifyWaitMs ?? DEFAULT_NOTIFY_WAIT_MS;
  const publicUrlFor = config.publicUrlFor ?? defaultPublicUrl;

  /** Reads the caller's live instance, locked for a change when asked; else NotFoundError. */
  async function mine(tx: Transaction, id: string, lock = false): Promise<InstanceDetailRow> {
    // Not a UUID: no such instance (and no database error for a malformed id).
    if (!UUID.test(id)) throw notFound(id);
    const row = await findInstanceDetail(tx, id, { lock });
    if (!row) throw notFound(id);
    return row;
  }

  /** The row as it is now (the agent may have changed it), or `fallback` if it went away. */
  async function reread(userId: string, fallback: InstanceDetailRow): Promise<InstanceView> {
    try {
      const row = await asUser(pool, userId, (tx) => findInstanceDetail(tx, fallback.id));
      return toView(row ?? fallback);
    } catch (error) {
      // The change is committed: failing now would lose the token shown only
      // in this answer, so the committed view is answered instead.
      logger?.warn(
        { err: String(error), instanceId: fallback.id },
        'could not re-read the instance',
      );
      return toView(fallback);
    }
  }

  async function checkKey(tx: Transaction, userId: string, type: McpTypeRow) {
    if (!type.requires_key) return null;
    const key = await findUsableApiKey(tx, userId, type.id);
    if (!key)
      throw new KeyMissingError(
        `type ${type.name} needs your API key and none is usable (missing, inactive or expired): store one with PUT /v1/keys/${type.name}`,
        { type: type.name },
      );
    return key.id;
  }

  async function checkInstanceLimit(tx: Transaction, userId: string): Promise<void> {
    await lockUserInstances(tx, userId);
    const limit = (await getSettings(tx))['mcp.max_instances_per_user'];
    const live = await countLiveInstancesOfUser(tx, userId);
    if (live >= limit)
      throw new InstanceLimitError(
        `you have ${live} pending or running instances and the limit is ${limit}: delete one or let one expire first`,
        { limit, live },
      );
  }

  function checkActive(type: McpTypeRow): void {
    if (!type.is_active)
      throw new ConflictError(`MCP type ${type.name} is disabled: no new instances of it can run`, {
        type: type.name,
      });
  }

  /** Asks the node's agent to start the instance and waits (bounded) for what it observes. */
  async function start(
    userId: string,
    row: InstanceDetailRow,
    reason: StartReason,
    meta: RequestMeta | undefined,
  ): Promise<StartOutcome> {
    if (row.node_id === null || row.node_grpc_address === null)
      return { status: 'pending', instance: toView(row) };
    let state: InstanceState;
    try {
      const answer = await agents({
        id: row.node_id,
        grpc_address: row.node_grpc_address,
      }).startInstance(
        {
          instanceId: row.id,
          requestId: meta?.requestId ?? '',
          reason,
          readyTimeoutMs: config.startWaitMs,
        },
        { deadlineMs: config.startWaitMs + ANSWER_MARGIN_MS },
      );
      state = answer.instance;
    } catch (error) {
      // Slow, unreachable or refusing: the row is committed, and the agent's
      // reconcile loop starts it when it can. The caller answers 202.
      logger?.warn(
        { err: String(error), instanceId: row.id, nodeId: row.node_id, reason },
        'agent did not confirm the start; leaving it to the reconcile loop',
      );
      return { status: 'pending', instance: await reread(userId, row) };
    }
    const instance = await reread(userId, row);
    if (state.status === 'error' || state.error !== null)
      return {
        status: 'error',
        instance,
        error: state.error ?? {
          code: 'INTERNAL',
          message: 'the agent could not start the instance',
        },
      };
    if (state.status === 'running' && state.ready) return { status: 'running', instance };
    return { status: 'pending', instance };
  }

  /** A call whose failure changes nothing for the caller: the reconcile loop converges anyway. */
  async function notify(
    row: InstanceDetailRow,
    call: { start: StartReason } | { stop: StopReason },
    meta: RequestMeta | undefined,
  ): Promise<void> {
    if (row.node_id === null || row.node_grpc_address === null) return;
    const client = agents({ id: row.node_id, grpc_address: row.node_grpc_address });
    const requestId = meta?.requestId ?? '';
    const deadlineMs = notifyWaitMs + ANSWER_MARGIN_MS;
    try {
      if ('start' in call)
        await client.startInstance(
          { instanceId: row.id, requestId, reason: call.start, readyTimeoutMs: notifyWaitMs },
          { deadlineMs },
        );
      else
        await client.stopInstance(
          { instanceId: row.id, requestId, reason: call.stop },
          { deadlineMs },
        );
    } catch (error) {
      // Best effort by design; logged so an unreachable agent shows up.
      logger?.warn(
        { err: String(error), instanceId: row.id, nodeId: row.node_id, call },
        'agent call failed; the reconcile loop will converge',
      );
    }
  }

  return {
    async create(input) {
      const type = await findTypeByName(pool, input.type);
      if (!type)
        throw new ValidationError(
          `type "${input.type}" does not exist: GET /v1/types lists the available ones`,
          { type: input.type },
        );
      checkActive(type);
      const settings = await getSettings(pool);
      const maxDuration = maxDurationOf(type);
      const duration =
        input.durationMinutes ?? Math.min(settings['mcp.default_duration_minutes'], maxDuration);
      if (!Number.isInteger(duration) || duration < 1 || duration > maxDuration)
        throw new ValidationError(
          `duration_minutes must be a whole number between 1 and ${maxDuration} for type ${type.name}, got ${duration}`,
          { type: type.name, durationMinutes: duration, maxDurationMinutes: maxDuration },
        );
      const resolved = resolveInstanceConfig(type, input.config);
      if (!resolved.ok) throw new ValidationError(resolved.message, { type: type.name });

      const id = randomUUID();
      const token = issueToken('access');
      const expiresAt = new Date(clock().getTime() + duration * MINUTE_MS);
      const row = await asUser(pool, input.userId, async (tx) => {
        await checkInstanceLimit(tx, input.userId);
        const apiKeyId = await checkKey(tx, input.userId, type);
        const placement = await placeInstance(tx, id, {
          heartbeatFreshSeconds: config.heartbeatFreshSeconds,
        });
        await insertInstance(tx, {
          id,
          userId: input.userId,
          mcpTypeId: type.id,
          apiKeyId,
          nodeId: placement.node.id,
          accessTokenHash: token.hash,
          accessTokenPrefix: token.displayPrefix,
          accessUrl: publicUrlFor(placement.node, placement.port),
          expiresAt,
          config: resolved.value,
        });
        await setInstancePort(tx, id, placement.port);
        await insertEvent(tx, {
          instanceId: id,
          userId: input.userId,
          type: 'created',
          data: {
            type: type.name,
            duration_minutes: duration,
            expires_at: expiresAt.toISOString(),
            node_id: placement.node.id,
            node: placement.node.name,
            port: placement.port,
          },
          ...auditMeta(input),
        });
        return mine(tx, id);
      });
      const outcome = await start(input.userId, row, 'START_REASON_CREATED', input);
      return { ...outcome, accessToken: token.token };
    },

    async get(userId, id) {
      return toView(await asUser(pool, userId, (tx) => mine(tx, id)));
    },

    async list(userId, query) {
      checkLimit(query.limit);
      const before = cursorPosition('instances', query.cursor);
      const rows = await asUser(pool, userId, (tx) =>
        listInstanceDetails(tx, {
          userId,
          ...(query.status ? { status: query.status } : {}),
          ...(query.type ? { typeName: query.type } : {}),
          ...(before ? { before } : {}),
          limit: query.limit + 1,
        }),
      );
      return page(rows, query.limit, 'instances', (r) => ({ at: r.cursor_at, id: r.id }), toView);
    },

    async delete(userId, id, meta) {
      const row = await asUser(pool, userId, async (tx) => {
        const current = await mine(tx, id, true);
        await softDeleteInstance(tx, id);
        const released = await releasePortsOfInstance(tx, id);
        await insertEvent(tx, {
          instanceId: id,
          userId,
          type: 'deleted',
          data: {
            status: current.status,
            node_id: current.node_id,
            port: current.assigned_port,
            ports_released: released,
          },
          ...auditMeta(meta),
        });
        return current;
      });
      // Only a live instance has a process to stop; the reconciler stops it anyway.
      if (LIVE.has(row.status)) await notify(row, { stop: 'STOP_REASON_DELETED' }, meta);
    },

    async extend(userId, id, change, meta) {
      const { minutes } = change;
      if (!Number.isInteger(minutes) || minutes < 1)
        throw new ValidationError(`minutes must be a whole number of at least 1, got ${minutes}`, {
          minutes,
        });
      const row = await asUser(pool, userId, async (tx) => {
        const current = await mine(tx, id, true);
        if (!LIVE.has(current.status))
          throw new ConflictError(
            `instance ${id} is ${current.status}: only a pending or running instance can be extended (restore it instead)`,
            { instanceId: id, status: current.status },
          );
        const type = await getTypeById(tx, current.mcp_type_id);
        const maxDuration = maxDurationOf(type);
        const now = clock().getTime();
        const base = Math.max(now, current.expires_at.getTime());
        const expiresAt = new Date(base + minutes * MINUTE_MS);
        if (expiresAt.getTime() - now > maxDuration * MINUTE_MS) {
          const room = Math.max(0, Math.floor((now + maxDuration * MINUTE_MS - base) / MINUTE_MS));
          throw new ValidationError(
            `extending by ${minutes} minutes would leave ${Math.ceil((expiresAt.getTime() - now) / MINUTE_MS)} minutes to run, but type ${type.name} allows at most ${maxDuration} minutes from now: extend by at most ${room} minutes`,
            { instanceId: id, minutes, maxDurationMinutes: maxDuration, maxExtensionMinutes: room },
          );
        }
        await setInstanceExpiry(tx, id, expiresAt);
        await insertEvent(tx, {
          instanceId: id,
          userId,
          type: 'extended',
          data: {
            minutes,
            previous_expires_at: current.expires_at.toISOString(),
            expires_at: expiresAt.toISOString(),
          },
          ...auditMeta(meta),
        });
        return mine(tx, id);
      });
      // The agent re-reads the row and re-arms its expiry timer now rather than at the old expiry.
      await notify(row, { start: 'START_REASON_EXTENDED' }, meta);
      return toView(row);
    },

    async restore(userId, id, meta) {
      const row = await asUser(pool, userId, async (tx) => {
        const current = await mine(tx, id, true);
        if (!RESTORABLE.has(current.status))
          throw new ConflictError(
            `instance ${id} is ${current.status}: only an expired, disconnected or errored instance can be restored`,
            { instanceId: id, status: current.status },
          );
        const type = await getTypeById(tx, current.mcp_type_id);
        checkActive(type);
        await checkInstanceLimit(tx, userId);
        const apiKeyId = await checkKey(tx, userId, type);
        const maxDuration = maxDurationOf(type);
        // Its original duration, as its `created` event recorded it (events
        // past retention are gone: then the default), within today's maximum.
        const created = CreatedData.safeParse(await findFirstEventData(tx, id, 'created'));
        const duration = Math.min(
          created.success
            ? created.data.duration_minutes
            : (await getSettings(tx))['mcp.default_duration_minutes'],
          maxDuration,
        );
        // Whatever it may still hold goes back first; it may land on another node.
        await releasePortsOfInstance(tx, id);
        const placement = await placeInstance(tx, id, {
          heartbeatFreshSeconds: config.heartbeatFreshSeconds,
        });
        const expiresAt = new Date(clock().getTime() + duration * MINUTE_MS);
        await reassignInstance(tx, id, {
          nodeId: placement.node.id,
          port: placement.port,
          accessUrl: publicUrlFor(placement.node, placement.port),
          expiresAt,
          apiKeyId,
        });
        await insertEvent(tx, {
          instanceId: id,
          userId,
          type: 'restored',
          data: {
            previous_status: current.status,
            duration_minutes: duration,
            expires_at: expiresAt.toISOString(),
            node_id: placement.node.id,
            node: placement.node.name,
            port: placement.port,
          },
          ...auditMeta(meta),
        });
        return mine(tx, id);
      });
      return start(userId, row, 'START_REASON_RESTORED', meta);
    },

    async rotateToken(userId, id, meta) {
      const token = issueToken('access');
      const row = await asUser(pool, userId, async (tx) => {
        const current = await mine(tx, id, true);
        await setInstanceToken(tx, id, { hash: token.hash, prefix: token.displayPrefix });
        await insertEvent(tx, {
          instanceId: id,
          userId,
          type: 'token_rotated',
          data: { previous_prefix: current.access_token_prefix, prefix: token.displayPrefix },
          ...auditMeta(meta),
        });
        return mine(tx, id);
      });
      // The gateway caches the token hash: a live instance picks up the new one now.
      if (LIVE.has(row.status)) await notify(row, { start: 'START_REASON_TOKEN_ROTATED' }, meta);
      return { instance: toView(row), accessToken: token.token };
    },

    async logs(userId, id, query) {
      checkLimit(query.limit);
      const before = cursorPosition('logs', query.cursor);
      const rows = await asUser(pool, userId, async (tx) => {
        await mine(tx, id);
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
        (r): LogView => ({
          id: r.id,
          timestamp: r.timestamp,
          level: r.level,
          source: r.source,
          message: r.message,
          metadata: r.metadata ?? {},
        }),
      );
    },

    async events(userId, id, query) {
      checkLimit(query.limit);
      const before = cursorPosition('events', query.cursor);
      const rows = await asUser(pool, userId, async (tx) => {
        await mine(tx, id);
        return listEventsPage(tx, {
          instanceId: id,
          ...(before ? { before } : {}),
          limit: query.limit + 1,
        });
      });
      return page(
        rows,
        query.limit,
        'events',
        (r) => ({ at: r.cursor_at, id: r.id }),
        (r): EventView => ({
          id: r.id,
          type: r.event_type,
          data: r.event_data ?? {},
          ipAddress: r.ip_address,
          userAgent: r.user_agent,
          createdAt: r.created_at,
        }),
      );
    },
  };
}
