// Starting the supervisor's child and starting it again: re-attach or spawn (a
// warm child first), handshake, `ready`; after an unexpected exit, a restart
// when the restart policy (agent/child/restart-policy.ts) allows, else `failed`.
import { McpServerStartError } from '../../core/errors.js';
import type { ChildInitializeResult, ChildRecord } from './child-registry.js';
import { type ChildRun, recordOf, terminate } from './child-run.js';
import { spawnRun } from './child-spawn.js';
import { initialize, stoppedWhileStarting, toStartError } from './handshake.js';
import { reattachRun } from './reattach.js';
import { emit, isStopping, releaseUser, type SupervisorContext } from './supervisor-context.js';
import type { ChildExit } from './supervisor.js';

/** The first start: the recorded child re-attached if there is one, else a new one. */
export async function startChild(ctx: SupervisorContext): Promise<ChildInitializeResult> {
  const { adopt } = ctx.options;
  try {
    return await (adopt !== undefined ? reattach(ctx, adopt) : launch(ctx, 0));
  } catch (error) {
    if (!isStopping(ctx)) {
      ctx.state = 'failed';
      const exit = ctx.run?.exit;
      emit(ctx, {
        type: 'failed',
        code: exit?.code ?? null,
        signal: exit?.signal ?? null,
        reason: error instanceof Error ? error.message : String(error),
        stderrTail: ctx.logs.tail(),
      });
    }
    ctx.run = undefined;
    releaseUser(ctx);
    throw error;
  }
}

/** Takes over a previous agent's child, or starts a new one if that is gone. */
async function reattach(
  ctx: SupervisorContext,
  record: ChildRecord,
): Promise<ChildInitializeResult> {
  const run = reattachRun(ctx, record);
  const result = record.initializeResult;
  if (run === undefined || result === undefined) return launch(ctx, 0);
  ctx.run = run;
  becomeReady(ctx, run, result, { adopted: true, handshakeMs: 0 });
  return result;
}

/** Spawns (or adopts a warm child) and handshakes; on failure the child is gone before this rejects. */
async function launch(
  ctx: SupervisorContext,
  attempt: number,
  mayTakeWarm = attempt === 0,
): Promise<ChildInitializeResult> {
  const { label } = ctx;
  ctx.state = 'starting';
  const warm = mayTakeWarm ? ctx.options.takeWarmChild?.() : undefined;
  const run = await spawnRun(ctx, attempt, warm);
  if (ctx.state !== 'starting') {
    // stop() came while the FIFOs were being made: it found no child to end.
    await terminate(run, 0);
    throw stoppedWhileStarting(label);
  }
  ctx.run = run;
  const startedAt = performance.now();
  if (run.pid === 0) {
    const exit = await run.exited;
    throw new McpServerStartError(`MCP server ${label} ${exit.reason}`, {
      label,
      reason: 'spawn_failed',
    });
  }
  let result: ChildInitializeResult;
  try {
    result = await initialize(ctx, run);
  } catch (error) {
    const startError = await endFailedHandshake(ctx, run, error);
    if (run.warm && ctx.state === 'starting') {
      // A pre-spawned child may have died idle just before it was taken: a cold
      // spawn decides. The same failure again (a bad key, a bad config) is reported then.
      ctx.logs.system(
        `the pre-spawned MCP server failed (${startError.message}); spawning a new one`,
      );
      return launch(ctx, attempt, false);
    }
    throw startError;
  }
  if (run.stopping || run.exit !== undefined) throw stoppedWhileStarting(label);
  run.connection.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  becomeReady(ctx, run, result, { adopted: false, handshakeMs: performance.now() - startedAt });
  return result;
}

/** The child that failed its handshake is ended (if it still runs); says why the start failed. */
async function endFailedHandshake(
  ctx: SupervisorContext,
  run: ChildRun,
  error: unknown,
): Promise<McpServerStartError> {
  if (run.stopping && run.killReason === undefined) throw stoppedWhileStarting(ctx.label);
  const startError = toStartError(ctx, error);
  if (run.exit === undefined) {
    run.killReason = startError.message.slice(`MCP server ${ctx.label} `.length);
    await terminate(run, 0);
  }
  return startError;
}

function becomeReady(
  ctx: SupervisorContext,
  run: ChildRun,
  result: ChildInitializeResult,
  how: { adopted: boolean; handshakeMs: number },
): void {
  // With its answer on record, a new agent can take this child over.
  ctx.options.registry?.add(recordOf(ctx, run, result));
  ctx.initializeResult = result;
  ctx.state = 'ready';
  void run.exited.then((exit) => onExit(ctx, run, exit));
  emit(ctx, {
    type: 'ready',
    pid: run.pid,
    adopted: how.adopted,
    handshakeMs: how.handshakeMs,
    connection: run.connection,
    initializeResult: result,
  });
}

function onExit(ctx: SupervisorContext, run: ChildRun, exit: ChildExit): void {
  const uptimeMs = Date.now() - run.spawnedAt;
  if (run.stopping || isStopping(ctx)) return;
  ctx.initializeResult = undefined;
  ctx.restartPolicy.exited(uptimeMs);
  scheduleRestart(ctx, exit);
}

/** Restarts after the policy's delay, or gives up (`failed`) once its budget is spent. */
function scheduleRestart(ctx: SupervisorContext, exit: ChildExit): void {
  const decision = ctx.restartPolicy.next();
  if (!decision.restart) {
    ctx.state = 'failed';
    ctx.run = undefined;
    releaseUser(ctx);
    emit(ctx, {
      type: 'failed',
      ...exit,
      reason: `${exit.reason}; gave up after ${ctx.settings.maxRestarts} restarts`,
      stderrTail: ctx.logs.tail(),
    });
    return;
  }
  const { attempt, delayMs } = decision;
  ctx.state = 'backoff';
  emit(ctx, { type: 'restarting', attempt, delayMs, reason: exit.reason });
  ctx.backoffTimer = setTimeout(() => {
    ctx.backoffTimer = undefined;
    if (ctx.state !== 'backoff') return;
    ctx.restarts += 1;
    launch(ctx, attempt).catch((error: unknown) => {
      if (isStopping(ctx)) return;
      const startError = error instanceof McpServerStartError ? error : undefined;
      const last = ctx.run?.exit;
      scheduleRestart(ctx, {
        code: last?.code ?? null,
        signal: last?.signal ?? null,
        reason: startError?.message ?? String(error),
      });
    });
  }, delayMs);
}
