// The domain logic of instances behind /v1/instances: create, read, list,
// delete, extend, restore, rotate the token, read logs and events. It writes
// the desired state (rows, ports, events, one transaction per change, as the
// user so row-level security applies) and then tells the node's agent, within
// a bounded wait; the agent's reconcile loop finishes whatever that misses.
// This factory wires; the behaviours live in lambdas/control/instance/.
import { isIP } from 'node:net';
import type { DatabasePool } from 'slonik';
import type { Logger } from '../../core/logger.js';
import type { AgentResolver } from './agent-registry.js';
import type { CandidateNode } from './db/placement.js';
import type { StartOutcome } from './instance/agent-calls.js';
import { createInstance, type CreateInstanceInput, type CreateOutcome } from './instance/create.js';
import type { InstanceServiceDeps, RequestMeta } from './instance/deps.js';
import {
  deleteInstance,
  extendInstance,
  restoreInstance,
  rotateInstanceToken,
} from './instance/lifecycle.js';
import {
  getInstance,
  listInstanceEvents,
  listInstanceLogs,
  listInstances,
  type ListInstancesQuery,
  type LogsQuery,
} from './instance/reads.js';
import type { EventView, InstanceView, LogView, Page } from './instance/views.js';

export type { StartOutcome } from './instance/agent-calls.js';
export type { CreateInstanceInput, CreateOutcome } from './instance/create.js';
export type { RequestMeta } from './instance/deps.js';
export type { ListInstancesQuery, LogsQuery } from './instance/reads.js';
export { MAX_PAGE_SIZE } from './instance/views.js';
export type { EventView, InstanceView, LogView, Page } from './instance/views.js';

const DEFAULT_NOTIFY_WAIT_MS = 3_000;

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
  logger: Logger;
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

function defaultPublicUrl(node: CandidateNode, port: number): string {
  const host = isIP(node.public_host) === 6 ? `[${node.public_host}]` : node.public_host;
  return `http://${host}:${port}/mcp`;
}

export function createInstanceService(options: InstanceServiceOptions): InstanceService {
  const { config } = options;
  const deps: InstanceServiceDeps = {
    pool: options.pool,
    agents: options.agents,
    logger: options.logger,
    clock: options.clock ?? (() => new Date()),
    heartbeatFreshSeconds: config.heartbeatFreshSeconds,
    startWaitMs: config.startWaitMs,
    notifyWaitMs: config.notifyWaitMs ?? DEFAULT_NOTIFY_WAIT_MS,
    publicUrlFor: config.publicUrlFor ?? defaultPublicUrl,
  };
  return {
    create: (input) => createInstance(deps, input),
    get: (userId, id) => getInstance(deps, userId, id),
    list: (userId, query) => listInstances(deps, userId, query),
    delete: (userId, id, meta) => deleteInstance(deps, userId, id, meta),
    extend: (userId, id, change, meta) => extendInstance(deps, userId, id, change.minutes, meta),
    restore: (userId, id, meta) => restoreInstance(deps, userId, id, meta),
    rotateToken: (userId, id, meta) => rotateInstanceToken(deps, userId, id, meta),
    logs: (userId, id, query) => listInstanceLogs(deps, userId, id, query),
    events: (userId, id, query) => listInstanceEvents(deps, userId, id, query),
  };
}
