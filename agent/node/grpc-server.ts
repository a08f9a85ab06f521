// The agent's side of proto/agent.proto over mutual TLS: commands act on one
// instance now through the reconciler; answers say what the agent observes.
// Each command is logged with the caller's request id, so one create can be
// followed from the API's log into the agent's.
import * as grpc from '@grpc/grpc-js';
import {
  instanceErrorCode,
  loadAgentProto,
  wireStopReason,
  type InstanceStateInput,
  type InstanceStopReason,
  type StartFailure,
  type StartInstanceRequest,
  type StopReason,
} from '../../core/agent-contract.js';
import {
  createAgentServiceImplementation,
  createHealthService,
  type AgentServiceHandlers,
  type GrpcCallMetrics,
  type HealthService,
} from './grpc-service.js';
import { findRuntimeSpec } from '../../core/db/instances.js';
import type { NodeStatus } from '../../core/domain.js';
import { NotFoundError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { createServerCredentials, type TlsMaterial } from '../../core/tls.js';
import type { DatabasePool } from 'slonik';
import type { InstanceRuntime } from '../instance/instance-runtime.js';
import type { Reconciler } from './reconciler.js';

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
    error: fail ? { code: instanceErrorCode(fail), message: fail.message } : null,
  };
}

/** Whether the row stopped the instance for another cause than the caller named. */
function stoppedForAnotherCause(asked: StopReason, stoppedAs: InstanceStopReason): boolean {
  return asked !== 'STOP_REASON_UNSPECIFIED' && wireStopReason(stoppedAs) !== asked;
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
  metrics?: GrpcCallMetrics;
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

  /** One command's logger: the RPC, its instance and the caller's request id. */
  const commandLog = (rpc: string, request: { instanceId: string; requestId: string }): Logger =>
    options.logger.child({ rpc, instance_id: request.instanceId, request_id: request.requestId });

  /** Starts the instance and answers what is observed when it ran, failed, or the wait ran out. */
  const start = async (
    request: StartInstanceRequest,
    signal: AbortSignal,
  ): Promise<InstanceStateInput> => {
    const timeoutMs = request.readyTimeoutMs || options.defaultReadyTimeoutMs;
    const ensured = reconciler.ensure(request.instanceId);
    let deadline: NodeJS.Timeout | undefined;
    const timer = new Promise<'timeout'>((resolve) => {
      deadline = setTimeout(() => resolve('timeout'), timeoutMs);
      signal.addEventListener('abort', () => resolve('timeout'), { once: true });
    });
    // Cleared whichever wins: a pending deadline would hold the process (and a
    // closure) for up to the whole timeout after every start.
    const outcome = await Promise.race([ensured, timer]).finally(() => clearTimeout(deadline));
    if (outcome === 'timeout') {
      const runtime = reconciler.get(request.instanceId);
      return runtime ? stateOf(runtime) : { instanceId: request.instanceId, status: 'pending' };
    }
    if ('runtime' in outcome) return stateOf(outcome.runtime, outcome.failure);
    switch (outcome.refused) {
      case 'NOT_FOUND':
        throw new NotFoundError(outcome.message, { instanceId: request.instanceId });
      case 'NOT_RUNNABLE':
      case 'SHUTTING_DOWN':
        // Not a start failure: what the row says, with why nothing was started.
        return {
          ...(await observe(request.instanceId)),
          error: { code: 'INTERNAL', message: outcome.message },
        };
    }
  };

  const handlers: AgentServiceHandlers = {
    async startInstance(request, context) {
      const log = commandLog('StartInstance', request);
      log.info({ reason: request.reason }, 'StartInstance received');
      try {
        const instance = await start(request, context.signal);
        log.info(
          { status: instance.status, error_code: instance.error?.code },
          'StartInstance answered',
        );
        return { instance };
      } catch (error) {
        log.warn({ err: String(error) }, 'StartInstance failed');
        throw error;
      }
    },
    async stopInstance(request) {
      const log = commandLog('StopInstance', request);
      log.info({ reason: request.reason }, 'StopInstance received');
      try {
        const runtime = reconciler.get(request.instanceId);
        const stoppedAs = await reconciler.release(request.instanceId);
        const instance = runtime ? stateOf(runtime) : await observe(request.instanceId);
        log.info(
          {
            status: instance.status,
            stopped_as: stoppedAs,
            ...(stoppedAs && stoppedForAnotherCause(request.reason, stoppedAs)
              ? { note: 'the row gave another cause than the caller' }
              : {}),
          },
          'StopInstance answered',
        );
        return { instance };
      } catch (error) {
        log.warn({ err: String(error) }, 'StopInstance failed');
        throw error;
      }
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
  };

  const { agentService, healthService } = loadAgentProto();
  const health = createHealthService();
  const server = new grpc.Server();
  server.addService(
    agentService,
    createAgentServiceImplementation(handlers, {
      onInternalError: (error, rpc) =>
        options.logger.error({ err: String(error), rpc }, 'gRPC handler failed'),
      ...(options.metrics ? { metrics: options.metrics } : {}),
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
