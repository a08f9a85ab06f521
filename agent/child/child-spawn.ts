// Spawning one child for a supervisor: its FIFOs, its OS user and working
// directory, its process group, its children record; or taking a warm child
// (agent/child/warm-pool.ts) instead and binding it to the instance.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import { McpServerStartError } from '../../core/errors.js';
import { type ChildRun, recordOf, terminate, wireRun } from './child-run.js';
import { prepareChildStdio, removeChildStdio, type ChildStdioStreams } from './child-stdio.js';
import type { ChildUsers } from './child-users.js';
import { stoppedWhileStarting } from './handshake.js';
import { readProcStat } from './proc.js';
import { cleanupFailed, emit, isStopping, type SupervisorContext } from './supervisor-context.js';
import type { WarmChild } from './supervisor.js';

/** The minimal environment of every child; the instance's variables go on top. */
export function baseChildEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
}

/** Spawns a child on new stdio FIFOs, or takes `warm` (which has its own). */
export async function spawnRun(
  ctx: SupervisorContext,
  attempt: number,
  warm: WarmChild | undefined,
): Promise<ChildRun> {
  let child: ChildProcess;
  let stdio: ChildStdioStreams;
  if (warm !== undefined) {
    ({ child, stdio } = warm);
    // The instance keeps the warm child's user across its restarts.
    if (warm.uid !== undefined) ctx.userId ??= warm.uid;
  } else {
    ({ child, stdio } = await spawnCold(ctx));
  }
  const pid = child.pid ?? 0;
  const stat = pid === 0 ? undefined : readProcStat(pid);
  const run = wireRun(ctx, {
    child,
    stdio,
    uid: ctx.userId,
    pid,
    startTicks: stat?.startTicks,
    spawnedAt: Date.now(),
    warm: warm !== undefined,
    // A warm child's load, before it was taken, is not this instance's CPU use.
    cpuTicks: warm !== undefined ? (stat?.cpuTicks ?? 0) : 0,
  });
  try {
    if (warm !== undefined && ctx.userId !== undefined) giveWorkingDirectory(ctx, ctx.userId);
    if (pid !== 0) ctx.options.registry?.add(recordOf(ctx, run));
  } catch (error) {
    // The child would outlive the agent unrecorded (or unbound): end it now.
    await terminate(run, 0);
    throw error;
  }
  if (pid !== 0) emit(ctx, { type: 'spawned', pid, attempt, warm: warm !== undefined });
  // Listeners are in place: now the warm child may start talking.
  warm?.bind({ env: ctx.options.env ?? {}, cwd: ctx.options.cwd });
  return run;
}

/** A new process in its own group, on new FIFOs, as the instance's user. */
async function spawnCold(
  ctx: SupervisorContext,
): Promise<{ child: ChildProcess; stdio: ChildStdioStreams }> {
  const { options } = ctx;
  if (options.users !== undefined) ctx.userId ??= acquireUser(ctx, options.users);
  const prepared = await prepareChildStdio(ctx.stdioRoot);
  const uid = ctx.userId;
  try {
    if (isStopping(ctx)) throw stoppedWhileStarting(ctx.label);
    giveWorkingDirectory(ctx, uid);
    const child = spawn(options.command, options.args ?? [], {
      cwd: options.cwd,
      env: ctx.env,
      stdio: [...prepared.childFds],
      // Its own process group, so stop and killOrphans reach its children too.
      detached: true,
      // Node drops supplementary groups too when a uid or gid is given.
      ...(uid !== undefined ? { uid, gid: uid } : {}),
    });
    return { child, stdio: prepared };
  } catch (error) {
    // spawn() throws for some failures (EMFILE, EAGAIN) instead of emitting 'error'.
    prepared.destroy();
    removeChildStdio(prepared.dir).catch((cleanupError: unknown) =>
      cleanupFailed(ctx, 'remove the stdio folder of a child that was not spawned', cleanupError),
    );
    throw error;
  } finally {
    // Only the child holds its ends now: its exit is the pipes' EOF.
    prepared.releaseChildFds();
  }
}

/** A user id for this instance's children, when children get their own. */
function acquireUser(ctx: SupervisorContext, users: ChildUsers): number {
  const { label } = ctx;
  const uid = users.acquire();
  if (uid === undefined)
    throw new McpServerStartError(
      `MCP server ${label} could not be started: every child user id in ${users.range} is in use (MINIMCP_CHILD_UIDS)`,
      { label, reason: 'no_child_user' },
    );
  return uid;
}

/** The working directory (and HOME) belongs to the child's user, and only to it. */
function giveWorkingDirectory(ctx: SupervisorContext, uid: number | undefined): void {
  mkdirSync(ctx.options.cwd, { recursive: true });
  if (uid === undefined) return;
  chownSync(ctx.options.cwd, uid, uid);
  chmodSync(ctx.options.cwd, 0o700);
}
