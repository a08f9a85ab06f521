// The supervised MCP server of an instance: a survivor of a previous agent
// taken over, a warm child, or a fresh spawn; its output goes to the
// instance's log and its events to the row.
import type { RuntimeSpecRow } from '../../core/db/instances.js';
import { parseLogLevel } from '../child/log-levels.js';
import { isPoolable } from '../child/server-command.js';
import { createSupervisor, type Supervisor, type SupervisorEvent } from '../child/supervisor.js';
import { launchFingerprint } from '../child/survivors.js';
import type { RuntimeContext } from './runtime-context.js';
import { emit, describeEvent } from './runtime-logs.js';
import { fail } from './runtime-stop.js';
import { writeState } from './state-writes.js';

export interface ChildLaunch {
  command: string;
  args: readonly string[];
  env: Record<string, string>;
  /** Redacted from the child's output. */
  secrets: string[];
}

/** The supervisor for the instance's child (not started yet). */
export function createInstanceSupervisor(
  ctx: RuntimeContext,
  spec: RuntimeSpecRow,
  launch: ChildLaunch,
): Supervisor {
  const { deps } = ctx;
  const { command, args, env } = launch;
  const fingerprint = launchFingerprint({
    command,
    args,
    env,
    runAs: deps.users ? 'own-user' : 'agent-user',
  });
  const survivor = deps.survivors?.claim(ctx.id, fingerprint);
  return createSupervisor({
    command,
    args,
    env,
    cwd: ctx.workDir,
    secrets: launch.secrets,
    label: ctx.id,
    registry: deps.registry,
    fingerprint,
    ...(survivor ? { adopt: survivor } : {}),
    ...(deps.stdioRoot ? { stdioRoot: deps.stdioRoot } : {}),
    ...(deps.users ? { users: deps.users } : {}),
    handshakeTimeoutMs: deps.handshakeTimeoutMs,
    stopGraceMs: deps.stopGraceMs,
    maxRestarts: deps.maxRestarts,
    onDiagnostic: (message, context) => ctx.log.warn(context, message),
    ...(deps.warmPool && isPoolable(spec)
      ? { takeWarmChild: () => deps.warmPool?.take(spec.type_name, command, args) }
      : {}),
    onLog: (line) =>
      emit(
        ctx,
        line.stream === 'system' ? 'warn' : parseLogLevel(line.text),
        line.stream === 'system' ? 'system' : 'process',
        line.text,
        undefined,
        new Date(line.at),
      ),
    // Backpressure: a child whose lines the shipper cannot take yet is not read.
    whenLogRoom: (resume) => deps.shipper.onDrain(resume),
    onEvent: (event) => onSupervisorEvent(ctx, event),
  });
}

function onSupervisorEvent(ctx: RuntimeContext, event: SupervisorEvent): void {
  ctx.deps.metrics?.childEvent(ctx.spec.type_name, event);
  const described = describeEvent(event);
  if (described) emit(ctx, described.level, 'system', described.message);
  if (event.type === 'ready') {
    ctx.readyCount++;
    if (ctx.readyCount === 1) ctx.reattached = event.adopted;
    if (ctx.readyCount > 1 && ctx.state === 'running') {
      void writeState(
        ctx,
        { processId: event.pid, status: 'running', errorMessage: null },
        { type: 'restarted', data: { pid: event.pid } },
      ).catch((error: unknown) =>
        ctx.log.warn({ err: String(error) }, 'could not record the restart'),
      );
    }
  }
  // While starting, start() itself reports the failure with its precise cause.
  if (event.type === 'failed' && ctx.state === 'running') {
    const tail = event.stderrTail.length
      ? ` — last stderr: ${event.stderrTail.slice(-3).join(' | ')}`
      : '';
    void fail(ctx, 'CHILD_EXITED', `the MCP server kept exiting: ${event.reason}${tail}`);
  }
}
