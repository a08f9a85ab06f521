// Re-attaching a supervisor to the child a previous agent started (from its
// children record, agent/child/survivors.ts): its FIFOs opened again, its user
// claimed, its recorded `initialize` answer used instead of a handshake.
import type { ChildRecord } from './child-registry.js';
import { type ChildRun, wireRun } from './child-run.js';
import { attachChildStdio, type ChildStdioStreams } from './child-stdio.js';
import { isRunning, readProcStat } from './proc.js';
import { killSurvivor } from './survivors.js';
import type { SupervisorContext } from './supervisor-context.js';

/**
 * The run of the recorded child, or undefined if it is gone meanwhile (then it
 * is killed for good and its record dropped).
 */
export function reattachRun(ctx: SupervisorContext, record: ChildRecord): ChildRun | undefined {
  const stdio = attachRecordedStdio(ctx, record);
  if (stdio === undefined) {
    killSurvivor(record, ctx.options);
    return undefined;
  }
  if (record.uid !== undefined) {
    ctx.options.users?.claim(record.uid);
    ctx.userId = record.uid;
  }
  const run = wireRun(ctx, {
    child: undefined,
    stdio,
    uid: record.uid,
    pid: record.pid,
    startTicks: record.startTicks,
    spawnedAt: record.spawnedAt,
    warm: false,
    cpuTicks: readProcStat(record.pid)?.cpuTicks ?? 0,
  });
  // The previous agent may have died in the middle of a message (one longer
  // than the pipe takes at once leaves in several writes): the child then
  // holds its first part unterminated, and our first message would join it
  // into one line that parses as neither. An empty line ends such a part; a
  // child that holds none reads a blank line, which stdio JSON-RPC readers
  // skip or report as a parse error and go on.
  stdio.stdin.write('\n');
  return run;
}

/** The recorded child's FIFOs, if it is still running and had answered `initialize`. */
function attachRecordedStdio(
  ctx: SupervisorContext,
  record: ChildRecord,
): ChildStdioStreams | undefined {
  if (
    record.stdioDir === undefined ||
    record.initializeResult === undefined ||
    !isRunning(record.pid, record.startTicks)
  )
    return undefined;
  try {
    return attachChildStdio(record.stdioDir);
  } catch (error) {
    ctx.logs.system(
      `could not re-attach to pid ${record.pid} (${(error as NodeJS.ErrnoException).code ?? String(error)}); starting a new process`,
    );
    return undefined;
  }
}
