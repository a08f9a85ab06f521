// The agent's side of the contract as a grpc-js service: typed handlers are
// adapted so requests arrive parsed, answers are parsed before they leave, and
// MiniMCP errors become gRPC statuses. Also the standard grpc.health.v1 service.
import * as grpc from '@grpc/grpc-js';
import type { z } from 'zod';
import {
  AGENT_METHODS,
  AGENT_SERVICE_NAME,
  describeIssues,
  ERROR_CODE_METADATA_KEY,
  HealthCheckRequest,
  parseMessage,
  type AgentMethodName,
  type HealthRequest,
  type HealthResponseInput,
  type ServingStatus,
  type StartInstanceRequest,
  type StartInstanceResponseInput,
  type StopInstanceRequest,
  type StopInstanceResponseInput,
} from '../../core/agent-contract.js';
import { MiniMcpError } from '../../core/errors.js';

export interface AgentCallContext {
  /** Aborted when the caller cancels or its deadline passes: stop waiting then. */
  signal: AbortSignal;
  deadline: grpc.Deadline;
  metadata: grpc.Metadata;
  peer: string;
  /** Common name of the client certificate ('' without mutual TLS). */
  clientCommonName: string;
}

/**
 * What an agent implements. Requests arrive parsed; answers are parsed before
 * they are sent. Throw a MiniMcpError to answer with its gRPC status (and its
 * code in trailing metadata); anything else is answered INTERNAL without its
 * message.
 */
export interface AgentServiceHandlers {
  startInstance(
    request: StartInstanceRequest,
    context: AgentCallContext,
  ): Promise<StartInstanceResponseInput>;
  stopInstance(
    request: StopInstanceRequest,
    context: AgentCallContext,
  ): Promise<StopInstanceResponseInput>;
  health(request: HealthRequest, context: AgentCallContext): Promise<HealthResponseInput>;
}

/** Counts each answered call by its RPC name and status code name (`OK`, `NOT_FOUND`, …). */
export interface GrpcCallMetrics {
  call(method: string, code: string): void;
}

export interface AgentServiceOptions {
  /** Told about errors answered as INTERNAL (their details are not sent to the caller). */
  onInternalError?: (error: unknown, rpc: string) => void;
  metrics?: GrpcCallMetrics;
}

/** The gRPC status an error is answered with. */
export function toStatus(error: unknown, rpc: string): Partial<grpc.StatusObject> {
  if (error instanceof MiniMcpError) {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_METADATA_KEY, error.code);
    return { code: error.grpcCode, details: error.message, metadata };
  }
  return { code: grpc.status.INTERNAL, details: `agent internal error in ${rpc}` };
}

function callContext(call: grpc.ServerUnaryCall<unknown, unknown>): {
  context: AgentCallContext;
  dispose(): void;
} {
  const controller = new AbortController();
  const onCancelled = (): void => controller.abort();
  call.on('cancelled', onCancelled);
  const subject = call.getAuthContext().sslPeerCertificate?.subject;
  const commonName = subject?.CN;
  return {
    context: {
      signal: controller.signal,
      deadline: call.getDeadline(),
      metadata: call.metadata,
      peer: call.getPeer(),
      clientCommonName: Array.isArray(commonName) ? (commonName[0] ?? '') : (commonName ?? ''),
    },
    dispose: () => call.off('cancelled', onCancelled),
  };
}

function reportInternal(error: unknown, rpc: string, options: AgentServiceOptions): void {
  if (!(error instanceof MiniMcpError)) options.onInternalError?.(error, rpc);
}

/** Parses what a handler answers; a mismatch is the agent's bug, answered INTERNAL. */
function parseAnswer<S extends z.ZodType>(schema: S, value: unknown, rpc: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new Error(
      `${rpc} answer does not match the agent contract: ${describeIssues(result.error)}`,
    );
  return result.data;
}

function unaryHandler(
  name: AgentMethodName,
  handler: (request: never, context: AgentCallContext) => Promise<unknown>,
  options: AgentServiceOptions,
): grpc.handleUnaryCall<unknown, unknown> {
  const spec = AGENT_METHODS[name];
  return (call, callback) => {
    const { context, dispose } = callContext(call);
    void (async () => {
      try {
        const request = parseMessage(spec.request, call.request, `${spec.rpc} request`);
        const answer = await handler(request as never, context);
        callback(null, parseAnswer(spec.response, answer, spec.rpc));
        options.metrics?.call(spec.rpc, grpc.status[grpc.status.OK]);
      } catch (error) {
        reportInternal(error, spec.rpc, options);
        const status = toStatus(error, spec.rpc);
        callback(status);
        options.metrics?.call(spec.rpc, grpc.status[status.code ?? grpc.status.UNKNOWN]);
      } finally {
        dispose();
      }
    })();
  };
}

/** The grpc-js implementation of AgentService for `server.addService(loadAgentProto().agentService, …)`. */
export function createAgentServiceImplementation(
  handlers: AgentServiceHandlers,
  options: AgentServiceOptions = {},
): grpc.UntypedServiceImplementation {
  const bind = <K extends AgentMethodName>(name: K) =>
    unaryHandler(name, handlers[name].bind(handlers) as never, options);
  return {
    [AGENT_METHODS.startInstance.rpc]: bind('startInstance'),
    [AGENT_METHODS.stopInstance.rpc]: bind('stopInstance'),
    [AGENT_METHODS.health.rpc]: bind('health'),
  };
}

export interface HealthService {
  /** For `server.addService(loadAgentProto().healthService, …)`. */
  implementation: grpc.UntypedServiceImplementation;
  setStatus(service: string, status: 'SERVING' | 'NOT_SERVING'): void;
  getStatus(service: string): ServingStatus;
  /** Marks every service NOT_SERVING, tells the watchers and ends their streams. */
  shutdown(): void;
}

/**
 * The standard grpc.health.v1.Health service. '' names the server as a whole.
 * @see https://github.com/grpc/grpc/blob/master/doc/health-checking.md
 */
export function createHealthService(
  initial: Record<string, 'SERVING' | 'NOT_SERVING'> = {
    '': 'SERVING',
    [AGENT_SERVICE_NAME]: 'SERVING',
  },
): HealthService {
  const statuses = new Map<string, ServingStatus>(Object.entries(initial));
  const watchers = new Map<string, Set<(status: ServingStatus) => void>>();
  const openWatches = new Set<grpc.ServerWritableStream<unknown, unknown>>();

  const setStatus = (service: string, status: ServingStatus): void => {
    if (statuses.get(service) === status) return;
    statuses.set(service, status);
    for (const notify of watchers.get(service) ?? []) notify(status);
  };

  const check: grpc.handleUnaryCall<unknown, unknown> = (call, callback) => {
    try {
      const { service } = parseMessage(HealthCheckRequest, call.request, 'Health.Check request');
      const status = statuses.get(service);
      if (status === undefined)
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${service}` });
      else callback(null, { status });
    } catch (error) {
      callback(toStatus(error, 'Health.Check'));
    }
  };

  const watch: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
    let service: string;
    try {
      service = parseMessage(HealthCheckRequest, call.request, 'Health.Watch request').service;
    } catch (error) {
      call.emit('error', toStatus(error, 'Health.Watch'));
      return;
    }
    const notify = (status: ServingStatus): void => {
      call.write({ status });
    };
    const set = watchers.get(service) ?? new Set();
    watchers.set(service, set);
    set.add(notify);
    openWatches.add(call);
    const forget = (): void => {
      set.delete(notify);
      if (set.size === 0) watchers.delete(service);
      openWatches.delete(call);
    };
    call.on('cancelled', forget);
    call.on('finish', forget);
    notify(statuses.get(service) ?? 'SERVICE_UNKNOWN');
  };

  return {
    implementation: { Check: check, Watch: watch },
    setStatus,
    getStatus: (service) => statuses.get(service) ?? 'SERVICE_UNKNOWN',
    shutdown() {
      for (const service of statuses.keys()) setStatus(service, 'NOT_SERVING');
      // Open watches would otherwise hold a graceful server shutdown forever;
      // the protocol tells watchers to retry after the stream ends.
      for (const call of [...openWatches]) call.end();
    },
  };
}
