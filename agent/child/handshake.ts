// The MCP handshake with a freshly spawned child: `initialize` with a timeout,
// raced against the child's exit, its answer parsed; and the typed start errors
// (McpServerStartError with a `reason`) a failed start ends in.
import { McpServerStartError } from '../../core/errors.js';
import { ChildInitializeResult } from './child-registry.js';
import type { ChildRun } from './child-run.js';
import { RpcErrorCode, RpcRequestError } from './stdio-connection.js';
import type { SupervisorContext } from './supervisor-context.js';

/** The protocol version the agent asks a child for; the child answers with its own. */
export const AGENT_PROTOCOL_VERSION = '2025-11-25';

/**
 * Sends `initialize` and returns the child's parsed answer. Rejects with an
 * McpServerStartError when the child exits first or answers nonsense, and with
 * the connection's RpcRequestError otherwise (see `toStartError`).
 */
export async function initialize(
  ctx: SupervisorContext,
  run: ChildRun,
): Promise<ChildInitializeResult> {
  const { label, options } = ctx;
  const answer = await Promise.race([
    run.connection.request(
      'initialize',
      {
        protocolVersion: AGENT_PROTOCOL_VERSION,
        capabilities: options.clientCapabilities ?? {
          sampling: {},
          elicitation: {},
          roots: { listChanged: true },
        },
        clientInfo: options.clientInfo ?? { name: 'minimcp-agent', version: '0.1.0' },
      },
      ctx.settings.handshakeTimeoutMs,
    ),
    run.exited.then((exit) => {
      throw new McpServerStartError(
        `MCP server ${label} ${exit.reason} before answering initialize`,
        { label, reason: 'exited', exitCode: exit.code, signal: exit.signal },
      );
    }),
  ]);
  const parsed = ChildInitializeResult.safeParse(answer);
  if (!parsed.success)
    throw new McpServerStartError(
      `MCP server ${label} answered initialize with an invalid result (${parsed.error.issues[0]?.message})`,
      { label, reason: 'protocol_error' },
    );
  return parsed.data;
}

/** What a failed `initialize` means for the start: a timeout or a failed handshake. */
export function toStartError(ctx: SupervisorContext, error: unknown): McpServerStartError {
  const { label, settings } = ctx;
  if (error instanceof McpServerStartError) return error;
  if (error instanceof RpcRequestError && error.rpcCode === RpcErrorCode.REQUEST_TIMEOUT)
    return new McpServerStartError(
      `MCP server ${label} did not answer initialize within ${settings.handshakeTimeoutMs} ms; it was killed`,
      { label, reason: 'handshake_timeout', timeoutMs: settings.handshakeTimeoutMs },
    );
  const message = error instanceof Error ? error.message : String(error);
  return new McpServerStartError(
    `MCP server ${label} failed its initialize handshake: ${ctx.redactor.redact(message)}`,
    { label, reason: 'handshake_failed' },
    { cause: error },
  );
}

export function stoppedWhileStarting(label: string): McpServerStartError {
  return new McpServerStartError(`MCP server ${label} was stopped while starting`, {
    label,
    reason: 'stopped',
  });
}
