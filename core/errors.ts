// The errors a caller can act on. Each has a stable `code`, an HTTP status for
// the API's problem+json answers and a gRPC status for the agent contract;
// the edges translate them once (lambdas/problem.ts, agent/node/grpc-server.ts).
// Context fields never carry a secret.

/** gRPC status codes we use (numeric values of @grpc/grpc-js `status`). */
export const GrpcCode = {
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export abstract class MiniMcpError extends Error {
  abstract readonly code: string;
  abstract readonly httpStatus: number;
  abstract readonly grpcCode: number;
  /** Non-secret context for logs and problem details. */
  readonly context: Record<string, unknown>;

  constructor(
    message: string,
    context: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }

  /**
   * Whether the message is written for the API's caller (the problem's
   * `detail`): yes below 500 and for a 503 (retry later); not for any other
   * 5xx, whose message may carry internals. A class whose 5xx message is meant
   * for callers says so.
   */
  get messageForClients(): boolean {
    return this.httpStatus < 500 || this.httpStatus === 503;
  }
}

export class ValidationError extends MiniMcpError {
  readonly code = 'VALIDATION_FAILED';
  readonly httpStatus = 400;
  readonly grpcCode = GrpcCode.INVALID_ARGUMENT;
}

export class UnauthenticatedError extends MiniMcpError {
  readonly code = 'UNAUTHENTICATED';
  readonly httpStatus = 401;
  readonly grpcCode = GrpcCode.UNAUTHENTICATED;
}

export class ForbiddenError extends MiniMcpError {
  readonly code = 'FORBIDDEN';
  readonly httpStatus = 403;
  readonly grpcCode = GrpcCode.PERMISSION_DENIED;
}

export class NotFoundError extends MiniMcpError {
  readonly code = 'NOT_FOUND';
  readonly httpStatus = 404;
  readonly grpcCode = GrpcCode.NOT_FOUND;
}

export class ConflictError extends MiniMcpError {
  readonly code = 'CONFLICT';
  readonly httpStatus = 409;
  readonly grpcCode = GrpcCode.ALREADY_EXISTS;
}

export class RateLimitedError extends MiniMcpError {
  readonly code = 'RATE_LIMITED';
  readonly httpStatus = 429;
  readonly grpcCode = GrpcCode.RESOURCE_EXHAUSTED;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    context: Record<string, unknown> = {},
  ) {
    super(message, context);
  }
}

export class InstanceLimitError extends MiniMcpError {
  readonly code = 'INSTANCE_LIMIT_REACHED';
  readonly httpStatus = 429;
  readonly grpcCode = GrpcCode.RESOURCE_EXHAUSTED;
}

export class KeyMissingError extends MiniMcpError {
  readonly code = 'KEY_MISSING';
  readonly httpStatus = 409;
  readonly grpcCode = GrpcCode.FAILED_PRECONDITION;
}

/** Ciphertext, IV, tag or wrapped key altered, or the wrong user/type context. */
export class DecryptionError extends MiniMcpError {
  readonly code = 'KEY_UNDECRYPTABLE';
  readonly httpStatus = 500;
  readonly grpcCode = GrpcCode.FAILED_PRECONDITION;
}

export class PortPoolExhaustedError extends MiniMcpError {
  readonly code = 'PORT_POOL_EXHAUSTED';
  readonly httpStatus = 503;
  readonly grpcCode = GrpcCode.RESOURCE_EXHAUSTED;
}

export class NoNodeAvailableError extends MiniMcpError {
  readonly code = 'NO_NODE_AVAILABLE';
  readonly httpStatus = 503;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
}

export class DatabaseUnavailableError extends MiniMcpError {
  readonly code = 'DATABASE_UNAVAILABLE';
  readonly httpStatus = 503;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
}

export class AgentUnavailableError extends MiniMcpError {
  readonly code = 'AGENT_UNAVAILABLE';
  readonly httpStatus = 503;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
}

/** A verification token that is unknown, expired, used, or for an address no longer the user's. */
export class VerificationTokenError extends MiniMcpError {
  readonly code = 'VERIFICATION_TOKEN_INVALID';
  readonly httpStatus = 400;
  readonly grpcCode = GrpcCode.INVALID_ARGUMENT;
}

/** The admin setting users.require_verified_email is on and the caller's address is not verified. */
export class EmailNotVerifiedError extends MiniMcpError {
  readonly code = 'EMAIL_NOT_VERIFIED';
  readonly httpStatus = 403;
  readonly grpcCode = GrpcCode.PERMISSION_DENIED;
}

export function isMiniMcpError(error: unknown): error is MiniMcpError {
  return error instanceof MiniMcpError;
}

/** The key provider (KMS) could not be reached or throttled us; retrying later may work. */
export class KeyProviderUnavailableError extends MiniMcpError {
  readonly code = 'KEY_PROVIDER_UNAVAILABLE';
  readonly httpStatus = 503;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
}

/** Why a stdio MCP server could not start: one per throw site in agent/child/supervisor.ts. */
export type McpServerStartReason =
  | 'no_child_user'
  | 'spawn_failed'
  | 'exited'
  | 'protocol_error'
  | 'stopped'
  | 'handshake_timeout'
  | 'handshake_failed';

/** A stdio MCP server could not be started: spawn failed, it exited, or it never answered `initialize`. */
export class McpServerStartError extends MiniMcpError {
  readonly code = 'MCP_SERVER_START_FAILED';
  readonly httpStatus = 502;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
  /** What went wrong, for code to branch on (the message is for people). */
  readonly reason: McpServerStartReason;

  constructor(
    message: string,
    context: { label: string; reason: McpServerStartReason } & Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, context, options);
    this.reason = context.reason;
  }
}

/** The port an instance is assigned to is already taken by another process. */
export class PortInUseError extends MiniMcpError {
  readonly code = 'PORT_IN_USE';
  readonly httpStatus = 409;
  readonly grpcCode = GrpcCode.UNAVAILABLE;
}

/** An agent did not answer within the call's deadline; it may still act on the request. */
export class AgentTimeoutError extends MiniMcpError {
  readonly code = 'AGENT_TIMEOUT';
  readonly httpStatus = 504;
  readonly grpcCode = GrpcCode.DEADLINE_EXCEEDED;
}

/** An agent answered with an error the control plane cannot act on, or broke the contract. */
export class AgentCallError extends MiniMcpError {
  readonly code = 'AGENT_CALL_FAILED';
  readonly httpStatus = 502;
  readonly grpcCode = GrpcCode.INTERNAL;
}

/**
 * The node's agent tried to start an instance (create, restore) and could not:
 * the instance is left in `error` with the agent's reason, which is the message
 * (the contract keeps secrets out of it). Restoring it tries again.
 */
export class InstanceStartError extends MiniMcpError {
  readonly code = 'INSTANCE_START_FAILED';
  readonly httpStatus = 502;
  readonly grpcCode = GrpcCode.FAILED_PRECONDITION;

  /** The agent's reason, which the owner also reads as the instance's error. */
  override get messageForClients(): boolean {
    return true;
  }
}
