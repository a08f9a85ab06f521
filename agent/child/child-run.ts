// One run of a supervised child, from spawn (or re-attach) to exit: its stdio
// connection and output wired up, its exit watched and settled (pipes drained,
// group killed, record dropped, FIFO folder removed), its end and its CPU samples.
import type { ChildProcess } from 'node:child_process';
import { readChildOutput, type ChildOutput } from './child-output.js';
import type { ChildInitializeResult, ChildRecord } from './child-registry.js';
import { removeChildStdio, type ChildStdioStreams } from './child-stdio.js';
import {
  CLOCK_TICKS,
  isRunning,
  killGroup,
  pageSize,
  readProcStat,
  readResidentPages,
} from './proc.js';
import { answerUnrouted, createStdioConnection, type StdioConnection } from './stdio-connection.js';
import { cleanupFailed, emit, type SupervisorContext } from './supervisor-context.js';
import type { ChildExit, ProcessSample } from './supervisor.js';

export interface ChildRun {
  /** Undefined for a child re-attached after an agent restart: it is not this process's child. */
  child: ChildProcess | undefined;
  stdio: ChildStdioStreams;
  /** Its OS user, when children get their own. */
  uid: number | undefined;
  /** Adopted from the warm pool rather than spawned. */
  warm: boolean;
  pid: number;
  startTicks: number | undefined;
  spawnedAt: number;
  connection: StdioConnection;
  exited: Promise<ChildExit>;
  exit: ChildExit | undefined;
  /** Set once the supervisor itself decided to end this child. */
  stopping: boolean;
  /** Why the supervisor killed it, when it did (handshake timeout). */
  killReason: string | undefined;
  lastCpuTicks: number;
  lastSampleAt: number;
}

/** What is known of a child when its run begins. */
export interface RunStart {
  child: ChildProcess | undefined;
  stdio: ChildStdioStreams;
  uid: number | undefined;
  pid: number;
  startTicks: number | undefined;
  spawnedAt: number;
  warm: boolean;
  /** CPU ticks already spent that are not this instance's (a warm child's idle time). */
  cpuTicks: number;
}

/** Lines that arrive between a child's exit and its pipes closing still count. */
const PIPE_DRAIN_MS = 200;
/** How often a re-attached child (no exit event: not our child) is checked for life. */
const ADOPTED_POLL_MS = 2_000;

/** The output reading, connection and exit watch of one child. */
export function wireRun(ctx: SupervisorContext, start: RunStart): ChildRun {
  const { stdio, pid } = start;
  const output = readChildOutput(stdio, ctx.logs, {
    maxLineBytes: ctx.settings.maxLogLineChars + ctx.redactor.longestSecret,
    whenLogRoom: ctx.options.whenLogRoom,
  });
  const connection = createStdioConnection({
    input: stdio.stdin,
    output: stdio.stdout,
    onStrayLine: output.strayStdoutLine,
    onOversizeMessage: (bytes) =>
      ctx.logs.system(`dropped a ${bytes}-byte message from the MCP server (over the size limit)`),
  });
  // Until the gateway binds, the agent is the child's only peer.
  connection.onmessage = (message) => answerUnrouted(connection, message);
  // Pipe errors end in the process's exit, which `exited` reports; a stream
  // 'error' without a listener would take the whole agent down instead.
  stdio.stdin.on('error', () => undefined);
  stdio.stdout.on('error', () => undefined);
  stdio.stderr.on('error', () => undefined);

  const run: ChildRun = {
    child: start.child,
    stdio,
    uid: start.uid,
    warm: start.warm,
    pid,
    startTicks: start.startTicks,
    spawnedAt: start.spawnedAt,
    connection,
    exited: undefined as unknown as Promise<ChildExit>,
    exit: undefined,
    stopping: false,
    killReason: undefined,
    lastCpuTicks: start.cpuTicks,
    lastSampleAt: Date.now(),
  };
  run.exited =
    run.child === undefined
      ? watchAdoptedExit(ctx, run, output)
      : watchOwnExit(ctx, run, run.child, output);
  void run.exited.then((exit) =>
    emit(ctx, {
      type: 'exited',
      pid,
      expected: run.stopping,
      uptimeMs: Date.now() - run.spawnedAt,
      ...exit,
    }),
  );
  return run;
}

/** Our own child: its 'exit' (or a failed spawn's 'error') ends the run. */
function watchOwnExit(
  ctx: SupervisorContext,
  run: ChildRun,
  child: ChildProcess,
  output: ChildOutput,
): Promise<ChildExit> {
  return new Promise<ChildExit>((resolve) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      // Without a pid, spawn itself failed (ENOENT, EACCES) and no exit follows.
      if (run.pid === 0)
        resolve(
          settle(ctx, run, {
            code: null,
            signal: null,
            reason: `could not be spawned (${error.code})`,
          }),
        );
      else ctx.logs.system(`process error: ${error.code ?? error.message}`);
    });
    child.once('exit', (code, signal) => {
      drainThen(run.stdio, output, () => {
        const reason =
          run.killReason ?? (signal !== null ? `killed by ${signal}` : `exited with code ${code}`);
        resolve(settle(ctx, run, { code, signal, reason }));
      });
    });
  });
}

/**
 * Re-attached: not our child, so no exit event and no exit status. It is gone
 * when its pid is (checked when its stdout closes, and now and then).
 */
function watchAdoptedExit(
  ctx: SupervisorContext,
  run: ChildRun,
  output: ChildOutput,
): Promise<ChildExit> {
  const { stdio, pid } = run;
  return new Promise<ChildExit>((resolve) => {
    let soon: NodeJS.Timeout | undefined;
    let gone = false;
    const check = (): void => {
      if (gone || isRunning(pid, run.startTicks)) return;
      gone = true;
      clearInterval(poll);
      clearInterval(soon);
      drainThen(stdio, output, () =>
        resolve(
          settle(ctx, run, {
            code: null,
            signal: null,
            reason:
              run.killReason ?? 'exited (exit status unknown: it was started by a previous agent)',
          }),
        ),
      );
    };
    let poll = setInterval(check, ADOPTED_POLL_MS);
    poll.unref();
    stdio.stdout.once('close', () => {
      if (gone) return;
      // EOF: the child closed its stdout or is exiting, which takes a moment:
      // look often for a second, then at the usual pace (it may live on).
      clearInterval(poll);
      let checks = 0;
      soon = setInterval(() => {
        check();
        if (gone || ++checks < 20) return;
        clearInterval(soon);
        poll = setInterval(check, ADOPTED_POLL_MS);
        poll.unref();
      }, 50);
      soon.unref();
    });
  });
}

/** Records the exit at once; resolves once the FIFO folder is gone too. */
async function settle(ctx: SupervisorContext, run: ChildRun, exit: ChildExit): Promise<ChildExit> {
  run.exit = exit;
  run.connection.close(`the MCP server ${exit.reason}`);
  run.stdio.destroy();
  if (run.pid !== 0) {
    // Anything it left behind in its group goes with it.
    killGroup(run.pid, 'SIGKILL');
    ctx.options.registry?.remove(run.pid);
  }
  // Whatever else runs as its user goes with it (a double fork escapes the group).
  if (run.uid !== undefined) ctx.options.users?.reclaim(run.uid);
  ctx.logs.flushNotice();
  // The exit is what callers wait for: a folder left behind is pruned at the next agent start.
  await removeChildStdio(run.stdio.dir).catch((error: unknown) =>
    cleanupFailed(ctx, 'remove the stdio folder of an exited child', error),
  );
  return exit;
}

/** After the exit, the last lines (the crash) still in the pipes are read. */
function drainThen(stdio: ChildStdioStreams, output: ChildOutput, finish: () => void): void {
  // A dead child writes no more, so backpressure no longer applies.
  output.open();
  let open = 2;
  const timer = setTimeout(done, PIPE_DRAIN_MS);
  const onClose = (): void => {
    open -= 1;
    if (open === 0) done();
  };
  stdio.stdout.once('close', onClose);
  stdio.stderr.once('close', onClose);
  if (stdio.stdout.closed) onClose();
  if (stdio.stderr.closed) onClose();
  function done(): void {
    if (timer === undefined) return;
    clearTimeout(timer);
    stdio.stdout.off('close', onClose);
    stdio.stderr.off('close', onClose);
    output.end();
    finish();
  }
}

/**
 * Ends one child: our end of its stdin closed (no EOF for it: it holds the
 * FIFO's other end itself), SIGTERM to its group, SIGKILL after `graceMs`.
 */
export async function terminate(run: ChildRun, graceMs: number): Promise<ChildExit> {
  run.stopping = true;
  if (run.exit !== undefined) return run.exit;
  if (run.pid === 0) return run.exited;
  run.stdio.stdin.end();
  if (graceMs > 0) {
    killGroup(run.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace'>((resolve) => {
      timer = setTimeout(() => resolve('grace'), graceMs);
    });
    const outcome = await Promise.race([run.exited, graceOver]);
    clearTimeout(timer);
    if (outcome !== 'grace') return outcome;
  }
  killGroup(run.pid, 'SIGKILL');
  return run.exited;
}

/** CPU use since the previous sample, memory and uptime of a live child. */
export function sampleRun(run: ChildRun | undefined): ProcessSample | undefined {
  if (run === undefined || run.exit !== undefined || run.pid === 0) return undefined;
  const stat = readProcStat(run.pid);
  const resident = readResidentPages(run.pid);
  if (stat === undefined || resident === undefined) return undefined;
  const now = Date.now();
  const elapsedMs = now - run.lastSampleAt;
  const ticks = stat.cpuTicks - run.lastCpuTicks;
  run.lastCpuTicks = stat.cpuTicks;
  run.lastSampleAt = now;
  const cpuPercent = elapsedMs > 0 ? ((ticks * (1000 / CLOCK_TICKS)) / elapsedMs) * 100 : 0;
  return {
    pid: run.pid,
    cpuPercent,
    rssBytes: resident * pageSize(),
    uptimeMs: now - run.spawnedAt,
  };
}

/** The children record of a run; with its `initialize` answer, a new agent can take it over. */
export function recordOf(
  ctx: SupervisorContext,
  run: ChildRun,
  result?: ChildInitializeResult,
): ChildRecord {
  return {
    pid: run.pid,
    pgid: run.pid,
    ...(run.startTicks !== undefined ? { startTicks: run.startTicks } : {}),
    label: ctx.label,
    command: ctx.options.command,
    spawnedAt: run.spawnedAt,
    ...(run.uid !== undefined ? { uid: run.uid } : {}),
    stdioDir: run.stdio.dir,
    ...(ctx.options.fingerprint !== undefined ? { fingerprint: ctx.options.fingerprint } : {}),
    ...(result !== undefined ? { initializeResult: result } : {}),
  };
}
