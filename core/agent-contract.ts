// The agent contract in TypeScript: loads proto/agent.proto (and the standard
// gRPC health service), holds a zod schema and type per message, and the
// vocabularies both sides share: start failures and stop reasons.
// agent/node/grpc-service.ts adapts an agent's handlers to grpc-js.
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { z } from 'zod';
import { INSTANCE_STATUSES, NodeStatus } from './domain.js';
import { ValidationError, type McpServerStartReason } from './errors.js';

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

/**
 * Why an instance's runtime stops on the agent, in the agent's words; it
 * decides what is written to the row. The agent judges it from the row
 * (agent/node/reconciler.ts), whatever StopReason a caller sent: `shutdown`
 * (the agent itself stops) and `superseded` (no longer wanted here for another
 * reason) have no wire form.
 */
export const INSTANCE_STOP_REASONS = [
  'deleted',
  'expired',
  'moved',
  'shutdown',
  'superseded',
] as const;
export type InstanceStopReason = (typeof INSTANCE_STOP_REASONS)[number];

/** The wire StopReason that names the same cause, UNSPECIFIED for the agent-only ones. */
export function wireStopReason(reason: InstanceStopReason): StopReason {
  switch (reason) {
    case 'deleted':
      return 'STOP_REASON_DELETED';
    case 'expired':
      return 'STOP_REASON_EXPIRED';
    case 'moved':
      return 'STOP_REASON_MOVED';
    case 'shutdown':
    case 'superseded':
      return 'STOP_REASON_UNSPECIFIED';
  }
}

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

/**
 * A start that failed on the agent, as its instance runtime reports it:
 * `code` is the thrown MiniMcpError's code (or the runtime's own, e.g.
 * CHILD_EXITED, START_FAILED), and `reason` says why an MCP server did not
 * start (an McpServerStartError's reason).
 */
export interface StartFailure {
  code: string;
  message: string;
  reason?: McpServerStartReason;
}

/** The contract's code for a start failure; branches on codes and reasons, never on messages. */
export function instanceErrorCode(failure: StartFailure): InstanceErrorCode {
  switch (failure.code) {
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
      return failure.reason === undefined ? 'SPAWN_FAILED' : serverStartCode(failure.reason);
    default:
      return 'INTERNAL';
  }
}

/** Exhaustive: a new McpServerStartReason does not compile until it has a contract code. */
function serverStartCode(reason: McpServerStartReason): InstanceErrorCode {
  switch (reason) {
    case 'no_child_user':
    case 'spawn_failed':
    case 'stopped':
      return 'SPAWN_FAILED';
    case 'exited':
      return 'CHILD_EXITED';
    case 'protocol_error':
    case 'handshake_timeout':
    case 'handshake_failed':
      // It ran but never became ready: it did not answer `initialize` as an MCP server must.
      return 'READY_TIMEOUT';
  }
}

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
  health: { rpc: 'Health', request: HealthRequest, response: HealthResponse },
} as const;
export type AgentMethodName = keyof typeof AGENT_METHODS;

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
