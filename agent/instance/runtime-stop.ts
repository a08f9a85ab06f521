// How an instance runtime ends: a stop for a reason (gateway closed, child
// stopped, files removed, the row written by reason), or a failure (row
// `error` with the reason, port released).
import { rm } from 'node:fs/promises';
import type { McpServerStartReason } from '../../core/errors.js';
import type { StopReason } from './instance-runtime.js';
import type { RuntimeContext } from './runtime-context.js';
import { emit } from './runtime-logs.js';
import { recordFailure, recordStop } from './state-writes.js';

/** Runs once; later calls get the same promise. */
export function stop(ctx: RuntimeContext, reason: StopReason): Promise<void> {
  ctx.stopping ??= (async () => {
    const wasRunning = ctx.state === 'running';
    ctx.state = 'stopping';
    if (ctx.expiryTimer) clearTimeout(ctx.expiryTimer);
    try {
      await ctx.gateway?.close();
    } finally {
      await ctx.supervisor?.stop();
    }
    ctx.state = 'stopped';
    emit(ctx, 'info', 'system', `stopped (${reason})`);
    await removeFiles(ctx);
    try {
      await recordStop(ctx, reason, wasRunning);
    } catch (error) {
      ctx.log.error({ err: String(error), reason }, 'could not record the stop');
    }
  })();
  return ctx.stopping;
}

/** The instance's working directory and kept sessions go; a failure to remove them is logged. */
async function removeFiles(ctx: RuntimeContext): Promise<void> {
  await rm(ctx.workDir, { recursive: true, force: true }).catch((error: unknown) =>
    ctx.log.warn({ err: String(error), step: 'remove work directory' }, 'stop step failed'),
  );
  if (ctx.sessionsFile)
    await rm(ctx.sessionsFile, { force: true }).catch((error: unknown) =>
      ctx.log.warn({ err: String(error), step: 'remove sessions file' }, 'stop step failed'),
    );
}

/** Ends the runtime as failed: the failure kept for callers, gateway and child closed, row `error`. */
export async function fail(
  ctx: RuntimeContext,
  code: string,
  message: string,
  reason?: McpServerStartReason,
): Promise<void> {
  ctx.failure = { code, message, reason };
  ctx.state = 'failed';
  emit(ctx, 'error', 'system', `failed to run: ${message}`);
  if (ctx.expiryTimer) clearTimeout(ctx.expiryTimer);
  // Best effort: the failure is recorded even when closing fails.
  await ctx.gateway
    ?.close()
    .catch((error: unknown) =>
      ctx.log.warn({ err: String(error), step: 'close gateway' }, 'failure cleanup step failed'),
    );
  await ctx.supervisor
    ?.stop()
    .catch((error: unknown) =>
      ctx.log.warn({ err: String(error), step: 'stop child' }, 'failure cleanup step failed'),
    );
  await recordFailure(ctx, code, message).catch((error: unknown) =>
    ctx.log.error({ err: String(error) }, 'could not record the failure'),
  );
}
