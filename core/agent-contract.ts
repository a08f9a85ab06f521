// The agent contract in TypeScript: loads proto/agent.proto (and the standard
// gRPC health service), holds a zod schema and type per message, and adapts
// typed handlers to a grpc-js service so both sides parse what they receive.
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { z } from 'zod';
import { INSTANCE_STATUSES, LogLevel, LogSource, NodeStatus } from './domain.js';
import { MiniMcpError, ValidationError } from './errors.js';

// ---------------------------------------------------------------------------
// Loading

/**
 * How both sides load the protos. camelCase field names (the proto's
 * snake_case is converted), enums as their names, int64 as JS numbers (all of
 * ours are milliseconds or counters, far below 2^53), and proto3 defaults
 * filled in, so an unset message field arrives as `null`.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** proto/ beside core/ in the source tree, and dist/proto beside dist/core after a build. */
export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
export const AGENT_PROTO_FILE = 'agent.proto';
export const HEALTH_PROTO_FILE = 'grpc/health/v1/health.proto';

export const AGENT_SERVICE_NAME = 'minimcp.agent.v1.AgentService';
export const HEALTH_SERVICE_NAME = 'grpc.health.v1.Health';

/** Trailing metadata key carrying a MiniMCP error's stable `code` next to the gRPC status. */
export const ERROR_CODE_METADATA_KEY = 'minimcp-error-code';

export interface AgentProto {
  packageDefinition: protoLoader.PackageDefinition;
  agentService: grpc.ServiceDefinition;
  healthService: grpc.ServiceDefinition;
}

function serviceDefinition(
  packageDefinition: protoLoader.PackageDefinition,
  name: string,
): grpc.ServiceDefinition {
  const definition = packageDefinition[name];
  // Messages and enums carry a `format` (their descriptor); services do not.
  if (definition === undefined || 'format' in definition)
    throw new Error(`${name} is not a service in ${PROTO_DIR}`);
  return definition as grpc.ServiceDefinition;
}

let loaded: AgentProto | undefined;

/** The loaded contract. Parsed once per process: the files never change while it runs. */
export function loadAgentProto(): AgentProto {
  if (loaded) return loaded;
  const packageDefinition = protoLoader.loadSync([AGENT_PROTO_FILE, HEALTH_PROTO_FILE], {
    ...PROTO_LOADER_OPTIONS,
    includeDirs: [PROTO_DIR],
  });
  loaded = {
    packageDefinition,
    agentService: serviceDefinition(packageDefinition, AGENT_SERVICE_NAME),
    healthService: serviceDefinition(packageDefinition, HEALTH_SERVICE_NAME),
  };
  return loaded;
}

// ---------------------------------------------------------------------------
// Messages. Each schema mirrors the loaded wire shape; `.default()` marks the
// fields a sender may omit (proto3 fills them on the way).

const InstanceId = z.uuid();
const UnixMs = z.number().int().nonnegative();
const Uint32 = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 1);
const Port = z.number().int().min(0).max(65535);

/** The schema's statuses plus the agent-side starting, stopping and stopped. */
export const AGENT_INSTANCE_STATUSES = [
  ...INSTANCE_STATUSES,
  'starting',
  'stopping',
  'stopped',
] as const;
export const AgentInstanceStatus = z.enum(AGENT_INSTANCE_STATUSES);
export type AgentInstanceStatus = z.infer<typeof AgentInstanceStatus>;

export const START_REASONS = [
  'START_REASON_UNSPECIFIED',
  'START_REASON_CREATED',
  'START_REASON_RESTORED',
  'START_REASON_EXTENDED',
  'START_REASON_TOKEN_ROTATED',
  'START_REASON_MOVED',
  'START_REASON_RECONCILE',
] as const;
export const StartReason = z.enum(START_REASONS);
export type StartReason = z.infer<typeof StartReason>;

export const STOP_REASONS = [
  'STOP_REASON_UNSPECIFIED',
  'STOP_REASON_DELETED',
  'STOP_REASON_EXPIRED',
  'STOP_REASON_MOVED',
  'STOP_REASON_TOKEN_ROTATED',
  'STOP_REASON_NODE_DRAINING',
] as const;
export const StopReason = z.enum(STOP_REASONS);
export type StopReason = z.infer<typeof StopReason>;

/** Why a start failed or an instance is in `error`; see InstanceError in the proto. */
export const INSTANCE_ERROR_CODES = [
  'UNKNOWN_TYPE',
  'KEY_MISSING',
  'KEY_UNDECRYPTABLE',
  'PORT_BUSY',
  'SPAWN_FAILED',
  'CHILD_EXITED',
  'READY_TIMEOUT',
  'INTERNAL',
] as const;
export const InstanceErrorCode = z.enum(INSTANCE_ERROR_CODES);
export type InstanceErrorCode = z.infer<typeof InstanceErrorCode>;

export const InstanceError = z.object({ code: InstanceErrorCode, message: z.string() });
export type InstanceError = z.infer<typeof InstanceError>;

export const InstanceState = z.object({
  instanceId: InstanceId,
  status: AgentInstanceStatus,
  ready: z.boolean().default(false),
  /** 0 when there is no child process. */
  pid: z.number().int().nonnegative().default(0),
  /** 0 when the port is not open. */
  port: Port.default(0),
  startedAtUnixMs: UnixMs.default(0),
  expiresAtUnixMs: UnixMs.default(0),
  restartCount: Uint32.default(0),
  error: InstanceError.nullable().default(null),
});
export type InstanceState = z.infer<typeof InstanceState>;
export type InstanceStateInput = z.input<typeof InstanceState>;

export const StartInstanceRequest = z.object({
  instanceId: InstanceId,
  requestId: z.string().max(128).default(''),
  reason: StartReason.default('START_REASON_UNSPECIFIED'),
  /** 0 means the agent's default; the call's deadline bounds it anyway. */
  readyTimeoutMs: Uint32.default(0),
});
export type StartInstanceRequest = z.infer<typeof StartInstanceRequest>;
export type StartInstanceRequestInput = z.input<typeof StartInstanceRequest>;

export const StartInstanceResponse = z.object({ instance: InstanceState });
export type StartInstanceResponse = z.infer<typeof StartInstanceResponse>;
export type StartInstanceResponseInput = z.input<typeof StartInstanceResponse>;

export const StopInstanceRequest = z.object({
  instanceId: InstanceId,
  requestId: z.string().max(128).default(''),
  reason: StopReason.default('STOP_REASON_UNSPECIFIED'),
  /** SIGTERM to SIGKILL; 0 means the agent's default. */
  gracePeriodMs: Uint32.default(0),
});
export type StopInstanceRequest = z.infer<typeof StopInstanceRequest>;
export type StopInstanceRequestInput = z.input<typeof StopInstanceRequest>;

export const StopInstanceResponse = z.object({ instance: InstanceState });
export type StopInstanceResponse = z.infer<typeof StopInstanceResponse>;
export type StopInstanceResponseInput = z.input<typeof StopInstanceResponse>;

export const GetInstanceRequest = z.object({ instanceId: InstanceId });
export type GetInstanceRequest = z.infer<typeof GetInstanceRequest>;
export type GetInstanceRequestInput = z.input<typeof GetInstanceRequest>;

export const GetInstanceResponse = z.object({ instance: InstanceState });
export type GetInstanceResponse = z.infer<typeof GetInstanceResponse>;
export type GetInstanceResponseInput = z.input<typeof GetInstanceResponse>;

export const ListInstancesRequest = z.object({
  /** Empty means every instance the agent knows. */
  instanceIds: z.array(InstanceId).default([]),
});
export type ListInstancesRequest = z.infer<typeof ListInstancesRequest>;
export type ListInstancesRequestInput = z.input<typeof ListInstancesRequest>;

export const ListInstancesResponse = z.object({ instances: z.array(InstanceState).default([]) });
export type ListInstancesResponse = z.infer<typeof ListInstancesResponse>;
export type ListInstancesResponseInput = z.input<typeof ListInstancesResponse>;

export const HealthRequest = z.object({});
export type HealthRequest = z.infer<typeof HealthRequest>;
export type HealthRequestInput = z.input<typeof HealthRequest>;

export const HealthResponse = z.object({
  /** '' before the node is registered. */
  nodeId: z.union([z.uuid(), z.literal('')]).default(''),
  nodeName: z.string().min(1),
  nodeStatus: NodeStatus,
  agentVersion: z.string().default(''),
  startedAtUnixMs: UnixMs.default(0),
  instancesRunning: Uint32.default(0),
  instancesStarting: Uint32.default(0),
  capacity: Uint32.default(0),
  portsFree: Uint32.default(0),
  databaseReachable: z.boolean().default(false),
});
export type HealthResponse = z.infer<typeof HealthResponse>;
export type HealthResponseInput = z.input<typeof HealthResponse>;

export const TailLogsRequest = z.object({
  instanceId: InstanceId,
  /** Most recent buffered lines sent first; 0 = none. */
  backlogLines: Uint32.default(0),
  /** Keep streaming new lines until the caller cancels. */
  follow: z.boolean().default(false),
  /** '' = every level. */
  minLevel: z.union([LogLevel, z.literal('')]).default(''),
});
export type TailLogsRequest = z.infer<typeof TailLogsRequest>;
export type TailLogsRequestInput = z.input<typeof TailLogsRequest>;

export const LogEntry = z.object({
  instanceId: InstanceId,
  sequence: z.number().int().nonnegative(),
  timestampUnixMs: UnixMs,
  level: LogLevel,
  source: LogSource,
  message: z.string(),
});
export type LogEntry = z.infer<typeof LogEntry>;
export type LogEntryInput = z.input<typeof LogEntry>;

// grpc.health.v1
export const SERVING_STATUSES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'] as const;
export const ServingStatus = z.enum(SERVING_STATUSES);
export type ServingStatus = z.infer<typeof ServingStatus>;

export const HealthCheckRequest = z.object({ service: z.string().default('') });
export type HealthCheckRequest = z.infer<typeof HealthCheckRequest>;

export const HealthCheckResponse = z.object({ status: ServingStatus });
export type HealthCheckResponse = z.infer<typeof HealthCheckResponse>;

/** Every AgentService RPC: its proto name and the schemas of what goes each way. */
export const AGENT_METHODS = {
  startInstance: {
    rpc: 'StartInstance',
    request: StartInstanceRequest,
    response: StartInstanceResponse,
  },
  stopInstance: {
    rpc: 'StopInstance',
    request: StopInstanceRequest,
    response: StopInstanceResponse,
  },
  getInstance: { rpc: 'GetInstance', request: GetInstanceRequest, response: GetInstanceResponse },
  listInstances: {
    rpc: 'ListInstances',
    request: ListInstancesRequest,
    response: ListInstancesResponse,
  },
  health: { rpc: 'Health', request: HealthRequest, response: HealthResponse },
  tailLogs: { rpc: 'TailLogs', request: TailLogsRequest, response: LogEntry },
} as const;
export type AgentMethodName = keyof typeof AGENT_METHODS;
export type UnaryAgentMethodName = Exclude<AgentMethodName, 'tailLogs'>;

/** Parses a received message; a mismatch names the RPC and what was wrong, never the values. */
export function parseMessage<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success)
    throw new ValidationError(
      `${what} does not match the agent contract: ${describeIssues(result.error)}`,
      {
        what,
      },
    );
  return result.data;
}

/** What a zod failure says, as paths and messages (zod leaves the values out). */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}

// ---------------------------------------------------------------------------
// Server side

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
 * message. `tailLogs` should end when `context.signal` aborts.
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
  getInstance(
    request: GetInstanceRequest,
    context: AgentCallContext,
  ): Promise<GetInstanceResponseInput>;
  listInstances(
    request: ListInstancesRequest,
    context: AgentCallContext,
  ): Promise<ListInstancesResponseInput>;
  health(request: HealthRequest, context: AgentCallContext): Promise<HealthResponseInput>;
  tailLogs(request: TailLogsRequest, context: AgentCallContext): AsyncIterable<LogEntryInput>;
}

export interface AgentServiceOptions {
  /** Told about errors answered as INTERNAL (their details are not sent to the caller). */
  onInternalError?: (error: unknown, rpc: string) => void;
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

type AnyServerCall =
  grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>;

function callContext(call: AnyServerCall): { context: AgentCallContext; dispose(): void } {
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
  name: UnaryAgentMethodName,
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
      } catch (error) {
        reportInternal(error, spec.rpc, options);
        callback(toStatus(error, spec.rpc));
      } finally {
        dispose();
      }
    })();
  };
}

/** Resolves when the stream can take more, or when the call is gone. */
function drained(call: grpc.ServerWritableStream<unknown, unknown>, signal: AbortSignal) {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

function tailLogsHandler(
  handler: AgentServiceHandlers['tailLogs'],
  options: AgentServiceOptions,
): grpc.handleServerStreamingCall<unknown, unknown> {
  const spec = AGENT_METHODS.tailLogs;
  return (call) => {
    const { context, dispose } = callContext(call);
    void (async () => {
      try {
        const request = parseMessage(spec.request, call.request, `${spec.rpc} request`);
        for await (const entry of handler(request, context)) {
          if (context.signal.aborted) break;
          if (!call.write(parseAnswer(spec.response, entry, spec.rpc)))
            await drained(call, context.signal);
        }
        if (!context.signal.aborted) call.end();
      } catch (error) {
        reportInternal(error, spec.rpc, options);
        // grpc-js turns an 'error' on a server stream into the call's final status.
        if (!context.signal.aborted) call.emit('error', toStatus(error, spec.rpc));
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
  const bind = <K extends UnaryAgentMethodName>(name: K) =>
    unaryHandler(name, handlers[name].bind(handlers) as never, options);
  return {
    [AGENT_METHODS.startInstance.rpc]: bind('startInstance'),
    [AGENT_METHODS.stopInstance.rpc]: bind('stopInstance'),
    [AGENT_METHODS.getInstance.rpc]: bind('getInstance'),
    [AGENT_METHODS.listInstances.rpc]: bind('listInstances'),
    [AGENT_METHODS.health.rpc]: bind('health'),
    [AGENT_METHODS.tailLogs.rpc]: tailLogsHandler(handlers.tailLogs.bind(handlers), options),
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
