// The agent's side of proto/agent.proto over mutual TLS: commands act on one
// instance now through the reconciler; answers say what the agent observes.
import * as grpc from '@grpc/grpc-js';
import {
  createAgentServiceImplementation,
  createHealthService,
  loadAgentProto,
  type AgentServiceHandlers,
  type HealthService,
  type InstanceErrorCode,
  type InstanceStateInput,
  type LogEntryInput,
} from '../../core/agent-contract.js';
import { findRuntimeSpec } from '../../core/db/instances.js';
import type { NodeStatus } from '../../core/domain.js';
import { NotFoundError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { createServerCredentials, type TlsMaterial } from '../../core/tls.js';
import type { DatabasePool } from 'slonik';
import type {
  InstanceRuntime,
  RuntimeLogLine,
  StartFailure,
} from '../instance/instance-runtime.js';
import type { Reconciler } from './reconciler.js';

const LEVEL_RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const;

/** Runtime failure codes (core/errors.ts codes) as the contract's InstanceErrorCode. */
function contractErrorCode(code: string, message: string): InstanceErrorCode {
  switch (code) {
    case 'KEY_MISSING':
      return 'KEY_MISSING';
    case 'KEY_UNDECRYPTABLE':
    case 'KEY_PROVIDER_UNAVAILABLE':
      return 'KEY_UNDECRYPTABLE';
    case 'PORT_IN_USE':
      return 'PORT_BUSY';
    case 'CHILD_EXITED':
      return 'CHILD_EXITED';
    case 'MCP_SERVER_START_FAILED':
      return /initialize|handshake/i.test(message)
        ? 'READY_TIMEOUT'
        : /exit|killed/i.test(message)
          ? 'CHILD_EXITED'
          : 'SPAWN_FAILED';
    case 'UNKNOWN_TYPE':
      return 'UNKNOWN_TYPE';
    default:
      return 'INTERNAL';
  }
}

function stateOf(runtime: InstanceRuntime, failure?: StartFailure): InstanceStateInput {
  const fail = failure ?? runtime.failure;
  const supervisor = runtime.supervisor();
  return {
    instanceId: runtime.id,
    status: fail
      ? 'error'
      : runtime.state === 'failed'
        ? 'error'
        : runtime.state === 'running'
          ? 'running'
          : runtime.state,
    ready: runtime.state === 'running',
    pid: runtime.pid ?? 0,
    port: runtime.state === 'running' ? runtime.port : 0,
    startedAtUnixMs: supervisor ? Math.max(0, Date.now() - supervisor.uptimeMs()) : 0,
    expiresAtUnixMs: runtime.spec.expires_at.getTime(),
    restartCount: supervisor?.restarts ?? 0,
    error: fail
      ? { code: contractErrorCode(fail.code, fail.message), message: fail.message }
      : null,
  };
}

export interface AgentGrpcServer {
  readonly port: number;
  readonly health: HealthService;
  close(): Promise<void>;
}

export interface AgentGrpcServerOptions {
  /** host:port to listen on (port 0 picks one). */
  address: string;
  tls: TlsMaterial;
  reconciler: Reconciler;
  pool: DatabasePool;
  node: () => { id: string; name: string; status: NodeStatus; capacity: number; portsFree: number };
  agentVersion: string;
  startedAt: number;
  databaseReachable: () => boolean;
  defaultReadyTimeoutMs: number;
  logger: Logger;
}

export async function startAgentGrpcServer(
  options: AgentGrpcServerOptions,
): Promise<AgentGrpcServer> {
  const { reconciler } = options;

  const observe = async (instanceId: string): Promise<InstanceStateInput> => {
    const runtime = reconciler.get(instanceId);
    if (runtime) return stateOf(runtime);
    const row = await findRuntimeSpec(options.pool, instanceId);
    if (!row) throw new NotFoundError(`instance ${instanceId} is unknown`, { instanceId });
    return {
      instanceId,
      status: row.deleted_at ? 'stopped' : row.status,
      ready: false,
      expiresAtUnixMs: row.expires_at.getTime(),
    };
  };

  const handlers: AgentServiceHandlers = {
    async startInstance(request, context) {
      const timeoutMs = request.readyTimeoutMs || options.defaultReadyTimeoutMs;
      const ensured = reconciler.ensure(request.instanceId);
      let deadline: NodeJS.Timeout | undefined;
      const timer = new Promise<'timeout'>((resolve) => {
        deadline = setTimeout(() => resolve('timeout'), timeoutMs);
        context.signal.addEventListener('abort', () => resolve('timeout'), { once: true });
      });
      // Cleared whichever wins: a pending deadline would hold the process (and a
      // closure) for up to the whole timeout after every start.
      const outcome = await Promise.race([ensured, timer]).finally(() => clearTimeout(deadline));
      if (outcome === 'timeout') {
        const runtime = reconciler.get(request.instanceId);
        return {
          instance: runtime
            ? stateOf(runtime)
            : { instanceId: request.instanceId, status: 'pending' },
        };
      }
      if (outcome.failure?.code === 'NOT_FOUND')
        throw new NotFoundError(outcome.failure.message, { instanceId: request.instanceId });
      if (!outcome.runtime) {
        return {
          instance: {
            ...(await observe(request.instanceId)),
            error: { code: 'INTERNAL', message: outcome.failure?.message ?? 'not started' },
          },
        };
      }
      return { instance: stateOf(outcome.runtime, outcome.failure) };
    },
    async stopInstance(request) {
      const runtime = reconciler.get(request.instanceId);
      await reconciler.release(request.instanceId);
      if (runtime) return { instance: stateOf(runtime) };
      return { instance: await observe(request.instanceId) };
    },
    async getInstance(request) {
      return { instance: await observe(request.instanceId) };
    },
    async listInstances(request) {
      const wanted = new Set(request.instanceIds);
      const runtimes = reconciler.list().filter((r) => wanted.size === 0 || wanted.has(r.id));
      return { instances: runtimes.map((r) => stateOf(r)) };
    },
    async health() {
      const node = options.node();
      const runtimes = reconciler.list();
      return {
        nodeId: node.id,
        nodeName: node.name,
        nodeStatus: node.status,
        agentVersion: options.agentVersion,
        startedAtUnixMs: options.startedAt,
        instancesRunning: runtimes.filter((r) => r.state === 'running').length,
        instancesStarting: runtimes.filter((r) => r.state === 'starting').length,
        capacity: node.capacity,
        portsFree: node.portsFree,
        databaseReachable: options.databaseReachable(),
      };
    },
    async *tailLogs(request, context) {
      const runtime = reconciler.get(request.instanceId);
      if (!runtime)
        throw new NotFoundError(`instance ${request.instanceId} does not run on this node`, {
          instanceId: request.instanceId,
        });
      const minRank = request.minLevel ? LEVEL_RANK[request.minLevel] : 0;
      let sequence = 0;
      const toEntry = (line: RuntimeLogLine): LogEntryInput => ({
        instanceId: runtime.id,
        sequence: sequence++,
        timestampUnixMs: line.at.getTime(),
        level: line.level,
        source: line.source,
        message: line.message,
      });
      const pending: RuntimeLogLine[] = [];
      let wake: (() => void) | undefined;
      const unsubscribe = request.follow
        ? runtime.subscribeLogs((line) => {
            pending.push(line);
            wake?.();
          })
        : () => undefined;
      try {
        const backlog =
          request.backlogLines > 0 ? runtime.recentLogs().slice(-request.backlogLines) : [];
        for (const line of backlog) if (LEVEL_RANK[line.level] >= minRank) yield toEntry(line);
        while (request.follow && !context.signal.aborted && runtime.state !== 'stopped') {
          const line = pending.shift();
          if (line) {
            if (LEVEL_RANK[line.level] >= minRank) yield toEntry(line);
            continue;
          }
          await new Promise<void>((resolve) => {
            wake = resolve;
            context.signal.addEventListener('abort', () => resolve(), { once: true });
            setTimeout(resolve, 1000).unref();
          });
          wake = undefined;
        }
      } finally {
        unsubscribe();
      }
    },
  };

  const { agentService, healthService } = loadAgentProto();
  const health = createHealthService();
  const server = new grpc.Server();
  server.addService(
    agentService,
    createAgentServiceImplementation(handlers, {
      onInternalError: (error, rpc) =>
        options.logger.error({ err: String(error), rpc }, 'gRPC handler failed'),
    }),
  );
  server.addService(healthService, health.implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(options.address, createServerCredentials(options.tls), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );

  let closed = false;
  return {
    port,
    health,
    async close() {
      if (closed) return;
      closed = true;
      health.shutdown();
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}
