// An instance's own log lines, shipped to mcp_logs; supervisor events and
// gateway access records phrased as lines.
import type { JsonObject, LogLevel, LogSource } from '../../core/domain.js';
import type { SupervisorEvent } from '../child/supervisor.js';
import type { AccessRecord } from '../gateway/gateway.js';
import type { RuntimeContext } from './runtime-context.js';

/** One line of the instance; false: the shipper's queue is full (the child's output is paused on it). */
export function emit(
  ctx: RuntimeContext,
  level: LogLevel,
  source: LogSource,
  message: string,
  metadata?: JsonObject,
  at = new Date(),
): boolean {
  return ctx.deps.shipper.push({
    instanceId: ctx.id,
    timestamp: at,
    level,
    source,
    message,
    ...(metadata ? { metadata } : {}),
  });
}

export function describeEvent(
  event: SupervisorEvent,
): { level: LogLevel; message: string } | undefined {
  switch (event.type) {
    case 'spawned':
      return {
        level: 'info',
        message: `spawned pid ${event.pid} (attempt ${event.attempt}${event.warm ? ', from the warm pool' : ''})`,
      };
    case 'ready':
      if (event.adopted)
        return {
          level: 'info',
          message: `re-attached to pid ${event.pid} (started by a previous agent): ${event.initializeResult.serverInfo.name} ${event.initializeResult.serverInfo.version}`,
        };
      return {
        level: 'info',
        message: `ready in ${Math.round(event.handshakeMs)} ms: ${event.initializeResult.serverInfo.name} ${event.initializeResult.serverInfo.version}`,
      };
    case 'exited':
      return event.expected
        ? { level: 'info', message: `stopped: ${event.reason}` }
        : { level: 'error', message: `exited unexpectedly: ${event.reason}` };
    case 'restarting':
      return {
        level: 'warn',
        message: `restarting in ${event.delayMs} ms (attempt ${event.attempt}): ${event.reason}`,
      };
    case 'failed':
      return { level: 'error', message: `gave up restarting: ${event.reason}` };
    default:
      return undefined;
  }
}

/** A gateway access record as an `api` line (unless access records are off). */
export function recordAccess(ctx: RuntimeContext, record: AccessRecord): void {
  if (!ctx.deps.recordAccess) return;
  const what = record.toolName
    ? `${record.mcpMethod} ${record.toolName}`
    : (record.mcpMethod ?? record.httpMethod);
  ctx.deps.shipper.push({
    instanceId: ctx.id,
    timestamp: new Date(record.at),
    level:
      record.status >= 500
        ? 'error'
        : record.status >= 400 || record.rpcErrorCode !== undefined
          ? 'warn'
          : 'info',
    source: 'api',
    message: `${what} → ${record.status} in ${record.latencyMs.toFixed(1)} ms`,
    metadata: {
      http_method: record.httpMethod,
      mcp_method: record.mcpMethod ?? null,
      tool: record.toolName ?? null,
      status: record.status,
      rpc_error_code: record.rpcErrorCode ?? null,
      latency_ms: record.latencyMs,
      session_id: record.sessionId ?? null,
    },
  });
}
