// The control plane's client for one agent: typed calls over the contract in
// agent-contract.ts, a deadline on every call, bounded retries on UNAVAILABLE,
// mutual TLS, and gRPC failures translated into core/errors.ts types.
import * as grpc from '@grpc/grpc-js';
import type { z } from 'zod';
import {
  AGENT_METHODS,
  AGENT_SERVICE_NAME,
  describeIssues,
  ERROR_CODE_METADATA_KEY,
  HEALTH_SERVICE_NAME,
  HealthCheckRequest,
  HealthCheckResponse,
  loadAgentProto,
  type AgentMethodName,
  type HealthResponse,
  type ServingStatus,
  type StartInstanceRequestInput,
  type StartInstanceResponse,
  type StopInstanceRequestInput,
  type StopInstanceResponse,
} from '../../core/agent-contract.js';
import {
  AgentCallError,
  AgentTimeoutError,
  AgentUnavailableError,
  ConflictError,
  DecryptionError,
  KeyMissingError,
  MiniMcpError,
  NotFoundError,
  PortPoolExhaustedError,
  ValidationError,
} from '../../core/errors.js';
import { createClientCredentials, type TlsMaterial } from '../../core/tls.js';

export interface AgentRetryOptions {
  /** Attempts in all, the first included. */
  maxAttempts?: number;
  /** Backoff before the second attempt; doubles each time up to `maxDelayMs`, with jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

export interface AgentRetryEvent {
  rpc: string;
  /** The attempt that failed (1 for the first). */
  attempt: number;
  delayMs: number;
  error: MiniMcpError;
}

export interface AgentClientOptions {
  /** host:port of the agent's gRPC server (the node's `grpc_address`). */
  address: string;
  /** Mutual TLS (the control plane's certificate and the CA agents' certificates chain to), or plaintext. */
  tls: TlsMaterial | 'insecure';
  /** Deadline of a call that gives none; a retried call keeps its first deadline. */
  defaultDeadlineMs?: number;
  retry?: AgentRetryOptions;
  /** Told before each retry, e.g. to log it. */
  onRetry?: (event: AgentRetryEvent) => void;
}

export interface AgentCallOptions {
  deadlineMs?: number;
}

export interface AgentClient {
  readonly address: string;
  /**
   * Give it a deadline above `readyTimeoutMs`: the agent then answers
   * "starting" when the child is slow, rather than the call timing out.
   */
  startInstance(
    request: StartInstanceRequestInput,
    options?: AgentCallOptions,
  ): Promise<StartInstanceResponse>;
  stopInstance(
    request: StopInstanceRequestInput,
    options?: AgentCallOptions,
  ): Promise<StopInstanceResponse>;
  /** AgentService.Health: the agent's view of its node. */
  health(options?: AgentCallOptions): Promise<HealthResponse>;
  /** grpc.health.v1.Health/Check for `service` ('' = the whole server). */
  checkHealth(service?: string, options?: AgentCallOptions): Promise<ServingStatus>;
  close(): void;
}

export const DEFAULT_AGENT_DEADLINE_MS = 5000;
const DEFAULT_RETRY: Required<AgentRetryOptions> = {
  maxAttempts: 4,
  initialDelayMs: 100,
  maxDelayMs: 1000,
};

/**
 * UNAVAILABLE from the transport, or from an agent that says it cannot serve
 * right now, is worth another attempt. An UNAVAILABLE that carries another
 * MiniMCP code is the agent's considered answer (e.g. PORT_IN_USE) and would
 * come back the same.
 */
const TRANSIENT_REMOTE_CODES = new Set([
  'AGENT_UNAVAILABLE',
  'DATABASE_UNAVAILABLE',
  'KEY_PROVIDER_UNAVAILABLE',
]);

/** Errors an agent may send by code that the control plane acts on as such. */
const REMOTE_ERRORS: Record<
  string,
  new (
    message: string,
    context: Record<string, unknown>,
    options: { cause: unknown },
  ) => MiniMcpError
> = {
  NOT_FOUND: NotFoundError,
  CONFLICT: ConflictError,
  KEY_MISSING: KeyMissingError,
  KEY_UNDECRYPTABLE: DecryptionError,
  PORT_POOL_EXHAUSTED: PortPoolExhaustedError,
  AGENT_UNAVAILABLE: AgentUnavailableError,
};

/** Reconnect quickly: agents restart in about a second, and our retries come after that. */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1000,
};

function isServiceError(error: unknown): error is grpc.ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<grpc.ServiceError>).code === 'number' &&
    (error as Partial<grpc.ServiceError>).metadata instanceof grpc.Metadata
  );
}

function remoteCode(error: grpc.ServiceError): string | undefined {
  const value = error.metadata.get(ERROR_CODE_METADATA_KEY)[0];
  return typeof value === 'string' ? value : undefined;
}

function isRetryable(error: grpc.ServiceError): boolean {
  if (error.code !== grpc.status.UNAVAILABLE) return false;
  const code = remoteCode(error);
  return code === undefined || TRANSIENT_REMOTE_CODES.has(code);
}

function retryDelay(attempt: number, retry: Required<AgentRetryOptions>): number {
  const ceiling = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** (attempt - 1));
  // Half fixed, half random: spreads callers out without ever retrying at once.
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * A failed call as the error the control plane acts on: the agent's MiniMCP
 * code (trailing metadata) picks the class; without one, the gRPC status does.
 */
function translate(
  error: unknown,
  address: string,
  rpc: string,
  extra: Record<string, unknown> = {},
): MiniMcpError {
  if (error instanceof MiniMcpError) return error;
  const context = { address, rpc, ...extra };
  if (!isServiceError(error))
    return new AgentCallError(`${rpc} on agent ${address} failed`, context, { cause: error });
  const withCode = { ...context, grpcCode: error.code };
  const code = remoteCode(error);
  const Remote = code === undefined ? undefined : REMOTE_ERRORS[code];
  if (Remote) return new Remote(error.details, withCode, { cause: error });
  // Any other code the agent sent is its considered answer, whatever the status.
  if (code !== undefined && !TRANSIENT_REMOTE_CODES.has(code))
    return new AgentCallError(
      `${rpc} on agent ${address} failed with ${code}: ${error.details}`,
      { ...withCode, remoteCode: code },
      { cause: error },
    );
  switch (error.code) {
    case grpc.status.UNAVAILABLE:
      return new AgentUnavailableError(
        `agent ${address} is unavailable for ${rpc}: ${error.details}`,
        withCode,
        { cause: error },
      );
    case grpc.status.DEADLINE_EXCEEDED:
      return new AgentTimeoutError(
        `agent ${address} did not answer ${rpc} within its deadline`,
        withCode,
        { cause: error },
      );
    case grpc.status.NOT_FOUND:
      return new NotFoundError(error.details, withCode, { cause: error });
    default:
      return new AgentCallError(
        `${rpc} on agent ${address} failed with ${grpc.status[error.code] ?? error.code}: ${error.details}`,
        withCode,
        { cause: error },
      );
  }
}

export function createAgentClient(options: AgentClientOptions): AgentClient {
  const { address } = options;
  const defaultDeadlineMs = options.defaultDeadlineMs ?? DEFAULT_AGENT_DEADLINE_MS;
  const retry = { ...DEFAULT_RETRY, ...options.retry };
  const { agentService, healthService } = loadAgentProto();
  const credentials =
    options.tls === 'insecure'
      ? grpc.credentials.createInsecure()
      : createClientCredentials(options.tls);
  // One channel for both services; paths are taken from the loaded definitions.
  const client = new grpc.Client(address, credentials, CHANNEL_OPTIONS);
  let closed = false;
  const sleepers = new Set<() => void>();

  function checkOpen(rpc: string): void {
    if (closed)
      throw new AgentUnavailableError(`the client for agent ${address} is closed`, {
        address,
        rpc,
      });
  }

  function serialize<S extends z.ZodType>(schema: S, value: unknown, rpc: string): z.infer<S> {
    const result = schema.safeParse(value);
    if (!result.success)
      throw new ValidationError(`${rpc} request: ${describeIssues(result.error)}`, {
        address,
        rpc,
      });
    return result.data;
  }

  function receive<S extends z.ZodType>(schema: S, value: unknown, rpc: string): z.infer<S> {
    const result = schema.safeParse(value);
    if (!result.success)
      throw new AgentCallError(
        `agent ${address} answered ${rpc} outside the contract: ${describeIssues(result.error)}`,
        { address, rpc },
      );
    return result.data;
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });
  }

  function unaryOnce(
    definition: grpc.MethodDefinition<unknown, unknown>,
    request: unknown,
    deadline: number,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      client.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        new grpc.Metadata(),
        { deadline },
        (error, response) => (error ? reject(error) : resolve(response)),
      );
    });
  }

  async function callUnary<S extends z.ZodType>(
    definition: grpc.MethodDefinition<unknown, unknown>,
    rpc: string,
    request: unknown,
    responseSchema: S,
    callOptions: AgentCallOptions = {},
  ): Promise<z.infer<S>> {
    checkOpen(rpc);
    const deadlineMs = callOptions.deadlineMs ?? defaultDeadlineMs;
    const deadline = Date.now() + deadlineMs;
    for (let attempt = 1; ; attempt++) {
      let failure: unknown;
      try {
        return receive(responseSchema, await unaryOnce(definition, request, deadline), rpc);
      } catch (error) {
        failure = error;
      }
      const error = translate(failure, address, rpc, { deadlineMs, attempts: attempt });
      if (!isServiceError(failure) || !isRetryable(failure) || attempt >= retry.maxAttempts)
        throw error;
      const delayMs = retryDelay(attempt, retry);
      // A retry that could only start after the deadline would fail as a timeout; report why instead.
      if (Date.now() + delayMs >= deadline) throw error;
      options.onRetry?.({ rpc, attempt, delayMs, error });
      await sleep(delayMs);
      checkOpen(rpc);
    }
  }

  type ResponseOf<K extends AgentMethodName> = z.infer<(typeof AGENT_METHODS)[K]['response']>;

  async function agentUnary<K extends AgentMethodName>(
    name: K,
    request: unknown,
    callOptions?: AgentCallOptions,
  ): Promise<ResponseOf<K>> {
    const spec: { rpc: string; request: z.ZodType; response: z.ZodType } = AGENT_METHODS[name];
    const definition = agentService[spec.rpc] as grpc.MethodDefinition<unknown, unknown>;
    const rpc = `${AGENT_SERVICE_NAME}/${spec.rpc}`;
    const parsed = serialize(spec.request, request, rpc);
    // The response schema is AGENT_METHODS[name].response, so its output is ResponseOf<K>.
    return (await callUnary(definition, rpc, parsed, spec.response, callOptions)) as ResponseOf<K>;
  }

  return {
    address,
    startInstance: (request, callOptions) => agentUnary('startInstance', request, callOptions),
    stopInstance: (request, callOptions) => agentUnary('stopInstance', request, callOptions),
    health: (callOptions) => agentUnary('health', {}, callOptions),
    async checkHealth(service = '', callOptions) {
      const rpc = `${HEALTH_SERVICE_NAME}/Check`;
      const definition = healthService.Check as grpc.MethodDefinition<unknown, unknown>;
      const request = serialize(HealthCheckRequest, { service }, rpc);
      const answer = await callUnary(definition, rpc, request, HealthCheckResponse, callOptions);
      return answer.status;
    },
    close() {
      if (closed) return;
      closed = true;
      try {
        // Retries waiting for their backoff give up now rather than after it.
        for (const wake of [...sleepers]) wake();
      } finally {
        client.close();
      }
    },
  };
}
