// The process supervisor: runs one stdio MCP server as a child in its own
// process group, performs the MCP handshake, restarts it with backoff, stops it
// (SIGTERM, then SIGKILL), and turns its output into bounded, redacted lines.
// It owns the child, its pipes, its timers and its record in the children registry.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { McpServerStartError } from '../../core/errors.js';
import { ChildInitializeResult, type ChildRecord, type ChildRegistry } from './child-registry.js';
import type { ChildUsers } from './child-users.js';
import {
  attachChildStdio,
  DEFAULT_STDIO_ROOT,
  prepareChildStdio,
  removeChildStdio,
  type ChildStdioStreams,
} from './child-stdio.js';
import {
  CLOCK_TICKS,
  isRunning,
  killGroup,
  pageSize,
  readProcStat,
  readResidentPages,
} from './proc.js';
import { createRedactor, type Redactor } from './redactor.js';
import { killSurvivor } from './survivors.js';
import {
  answerUnrouted,
  createLineSplitter,
  createStdioConnection,
  type LineSplitter,
  RpcErrorCode,
  RpcRequestError,
  type StdioConnection,
} from './stdio-connection.js';

export { ChildInitializeResult };
export type { ChildRecord, ChildRegistry };

/** The protocol version the agent asks a child for; the child answers with its own. */
export const AGENT_PROTOCOL_VERSION = '2025-11-25';

export type SupervisorState =
  'idle' | 'starting' | 'ready' | 'backoff' | 'failed' | 'stopping' | 'stopped';

export interface ChildLogLine {
  /** `system` lines are the supervisor's own notes (e.g. lines dropped). */
  stream: 'stderr' | 'stdout' | 'system';
  /** Redacted, at most `maxLogLineChars` characters plus a truncation note. */
  text: string;
  /** Epoch milliseconds. */
  at: number;
}

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** "exited with code 3", "killed by SIGKILL", "no initialize answer within 5000 ms". */
  reason: string;
}

export type SupervisorEvent =
  /** `warm`: a pre-spawned child was taken from the warm pool instead. */
  | { type: 'spawned'; pid: number; attempt: number; warm: boolean }
  | {
      type: 'ready';
      pid: number;
      /** Re-attached to a child a previous agent started (no handshake: its answer was recorded). */
      adopted: boolean;
      handshakeMs: number;
      connection: StdioConnection;
      initializeResult: ChildInitializeResult;
    }
  | ({ type: 'exited'; pid: number; expected: boolean; uptimeMs: number } & ChildExit)
  | { type: 'restarting'; attempt: number; delayMs: number; reason: string }
  | ({ type: 'failed'; stderrTail: string[] } & ChildExit)
  | { type: 'stopped' };

export interface ProcessSample {
  pid: number;
  /** CPU use since the previous sample (or since spawn), 100 = one core. */
  cpuPercent: number;
  rssBytes: number;
  uptimeMs: number;
}

export interface SupervisorOptions {
  command: string;
  args?: readonly string[];
  /** Added to the minimal environment; the decrypted key arrives as MINIMCP_API_KEY. */
  env?: Readonly<Record<string, string>>;
  /** The child's working directory and HOME; created if missing. */
  cwd: string;
  /** Redacted from everything the child prints (the API key, the access token). */
  secrets?: readonly string[];
  /** Names the child in its children record and in error messages (an instance id). */
  label?: string;
  /** Records the child so that a restarted agent re-attaches to it or kills it. */
  registry?: ChildRegistry;
  /** Where each child's stdio FIFOs get a folder (default: a folder under the OS temp dir). */
  stdioRoot?: string;
  /**
   * OS users for children: each child runs as one of its own (its `cwd` is
   * handed to that user); unset, children run as the agent's user.
   */
  users?: ChildUsers;
  /** Recorded with the child: what it was started with (agent/child/survivors.ts). */
  fingerprint?: string;
  /**
   * A child a previous agent started (from its children records) to re-attach to
   * instead of spawning; if it is gone by now, `start` spawns a new one.
   */
  adopt?: ChildRecord;
  handshakeTimeoutMs?: number;
  stopGraceMs?: number;
  /** Restarts after unexpected exits before the terminal `failed`. */
  maxRestarts?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A child that ran this long gets its restart budget back. */
  stableAfterMs?: number;
  maxLogLineChars?: number;
  /** Token bucket for log lines (stderr and stray stdout together). */
  logLinesPerSecond?: number;
  logBurst?: number;
  /** Declared to the child in `initialize`; the gateway routes such requests to clients. */
  clientCapabilities?: Record<string, unknown>;
  clientInfo?: { name: string; version: string };
  /**
   * First start only: a pre-spawned child of the same command (agent/child/warm-pool.ts)
   * to adopt instead of spawning; it gets `env` and `cwd` over its binding pipe.
   * Restarts, and a taken child that fails its handshake, spawn cold.
   */
  takeWarmChild?(): WarmChild | undefined;
  /**
   * Receives each line. Answering false means "no room": the supervisor stops
   * reading the child's stderr (and its stdout, when the refused line was
   * stray stdout), so the child blocks on its own writes, and asks
   * `whenLogRoom` to call back once lines are taken again.
   */
  onLog?(line: ChildLogLine): boolean | void;
  /** Calls `resume` once onLog has room again (at once if it has now). */
  whenLogRoom?(resume: () => void): void;
  onEvent?(event: SupervisorEvent): void;
}

export interface Supervisor {
  /** Spawns the child and resolves once it answered `initialize`; one-shot. */
  start(): Promise<ChildInitializeResult>;
  /** SIGTERM to the group, SIGKILL after the grace period; idempotent. */
  stop(): Promise<void>;
  readonly state: SupervisorState;
  readonly pid: number | undefined;
  /** Respawns after unexpected exits, over the supervisor's life. */
  readonly restarts: number;
  /** Lines dropped by the rate limit. */
  readonly droppedLogLines: number;
  /** The live connection while `ready`. */
  readonly connection: StdioConnection | undefined;
  /** The current child's `initialize` answer while `ready`. */
  readonly initializeResult: ChildInitializeResult | undefined;
  uptimeMs(): number;
  sample(): ProcessSample | undefined;
  /** Adds a listener for lifecycle events; returns its removal. */
  subscribe(listener: (event: SupervisorEvent) => void): () => void;
}

/** A child spawned ahead of time that waits for its instance on a pipe. */
export interface WarmChild {
  readonly child: ChildProcess;
  /** The OS user it runs as (from the same ChildUsers); the taker releases it. */
  readonly uid?: number;
  /** The agent's ends of its stdio FIFOs. */
  readonly stdio: ChildStdioStreams;
  /** Sends what a cold spawn would have put in the environment, and the working directory. */
  bind(binding: { env: Readonly<Record<string, string>>; cwd: string }): void;
}

/** The minimal environment of every child; the instance's variables go on top. */
export function baseChildEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: home,
    LANG: process.env.LANG ?? 'C.UTF-8',
  };
}

interface Run {
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

const DEFAULTS = {
  handshakeTimeoutMs: 15_000,
  stopGraceMs: 5_000,
  maxRestarts: 3,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  stableAfterMs: 60_000,
  maxLogLineChars: 8_192,
  logLinesPerSecond: 5_000,
  logBurst: 10_000,
};
const STDERR_TAIL_LINES = 10;
const STDERR_TAIL_LINE_BYTES = 1_024;
/** Lines that arrive between a child's exit and its pipes closing still count. */
const PIPE_DRAIN_MS = 200;
/** How often a re-attached child (no exit event: not our child) is checked for life. */
const ADOPTED_POLL_MS = 2_000;

export function createSupervisor(options: SupervisorOptions): Supervisor {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const redactor = createRedactor(options.secrets ?? []);
  const listeners = new Set<(event: SupervisorEvent) => void>();
  if (options.onEvent) listeners.add(options.onEvent);
  const label = options.label ?? path.basename(options.command);

  let state: SupervisorState = 'idle';
  let run: Run | undefined;
  let initializeResult: ChildInitializeResult | undefined;
  let restarts = 0;
  let failuresInARow = 0;
  let backoffTimer: NodeJS.Timeout | undefined;
  let stopPromise: Promise<void> | undefined;
  let startCalled = false;
  /** This instance's OS user (MINIMCP_CHILD_UIDS), the same for all its children. */
  let userId: number | undefined;

  const logs = createLogSink(settings, redactor, options.onLog);

  const emit = (event: SupervisorEvent): void => {
    for (const listener of listeners) listener(event);
  };

  const env: Record<string, string> = { ...baseChildEnv(options.cwd), ...options.env };

  const stdioRoot = options.stdioRoot ?? DEFAULT_STDIO_ROOT;

  /** Spawns a child on new stdio FIFOs, or takes `warm` (which has its own). */
  async function spawnChild(attempt: number, warm: WarmChild | undefined): Promise<Run> {
    let child: ChildProcess;
    let stdio: ChildStdioStreams;
    if (warm !== undefined) {
      ({ child, stdio } = warm);
      // The instance keeps the warm child's user across its restarts.
      if (warm.uid !== undefined) userId ??= warm.uid;
    } else {
      if (options.users !== undefined) userId ??= acquireUser(options.users);
      const prepared = await prepareChildStdio(stdioRoot);
      const uid = userId;
      try {
        if (state === 'stopping' || state === 'stopped') throw stoppedWhileStarting();
        giveWorkingDirectory(uid);
        child = spawn(options.command, options.args ?? [], {
          cwd: options.cwd,
          env,
          stdio: [...prepared.childFds],
          // Its own process group, so stop and killOrphans reach its children too.
          detached: true,
          // Node drops supplementary groups too when a uid or gid is given.
          ...(uid !== undefined ? { uid, gid: uid } : {}),
        });
      } catch (error) {
        // spawn() throws for some failures (EMFILE, EAGAIN) instead of emitting 'error'.
        prepared.destroy();
        void removeChildStdio(prepared.dir);
        throw error;
      } finally {
        // Only the child holds its ends now: its exit is the pipes' EOF.
        prepared.releaseChildFds();
      }
      stdio = prepared;
    }
    const pid = child.pid ?? 0;
    const stat = pid === 0 ? undefined : readProcStat(pid);
    const current = wireRun({
      child,
      stdio,
      uid: userId,
      pid,
      startTicks: stat?.startTicks,
      spawnedAt: Date.now(),
      warm: warm !== undefined,
      // A warm child's load, before it was taken, is not this instance's CPU use.
      cpuTicks: warm !== undefined ? (stat?.cpuTicks ?? 0) : 0,
    });
    try {
      if (warm !== undefined && userId !== undefined) giveWorkingDirectory(userId);
      if (pid !== 0) options.registry?.add(recordOf(current));
    } catch (error) {
      // The child would outlive the agent unrecorded (or unbound): end it now.
      await terminate(current, 0);
      throw error;
    }
    if (pid !== 0) emit({ type: 'spawned', pid, attempt, warm: warm !== undefined });
    // Listeners are in place: now the warm child may start talking.
    warm?.bind({ env: options.env ?? {}, cwd: options.cwd });
    return current;
  }

  /** A user id for this instance's children, when children get their own. */
  function acquireUser(users: ChildUsers): number {
    const uid = users.acquire();
    if (uid === undefined)
      throw new McpServerStartError(
        `MCP server ${label} could not be started: every child user id in ${users.range} is in use (MINIMCP_CHILD_UIDS)`,
        { label, reason: 'no_child_user' },
      );
    return uid;
  }

  /** Gives the user back once no child of this supervisor will run again (stopped or failed). */
  function releaseUser(): void {
    if (userId === undefined) return;
    options.users?.release(userId);
    userId = undefined;
  }

  /** The working directory (and HOME) belongs to the child's user, and only to it. */
  function giveWorkingDirectory(uid: number | undefined): void {
    mkdirSync(options.cwd, { recursive: true });
    if (uid === undefined) return;
    chownSync(options.cwd, uid, uid);
    chmodSync(options.cwd, 0o700);
  }

  function recordOf(current: Run, result?: ChildInitializeResult): ChildRecord {
    return {
      pid: current.pid,
      pgid: current.pid,
      ...(current.startTicks !== undefined ? { startTicks: current.startTicks } : {}),
      label,
      command: options.command,
      spawnedAt: current.spawnedAt,
      ...(current.uid !== undefined ? { uid: current.uid } : {}),
      stdioDir: current.stdio.dir,
      ...(options.fingerprint !== undefined ? { fingerprint: options.fingerprint } : {}),
      ...(result !== undefined ? { initializeResult: result } : {}),
    };
  }

  /** The line splitting, backpressure, connection and exit watch of one child. */
  function wireRun(base: {
    child: ChildProcess | undefined;
    stdio: ChildStdioStreams;
    uid: number | undefined;
    pid: number;
    startTicks: number | undefined;
    spawnedAt: number;
    warm: boolean;
    cpuTicks: number;
  }): Run {
    const { child, stdio, pid } = base;
    const stderr = createLineSplitter({
      maxLineBytes: settings.maxLogLineChars + redactor.longestSecret,
      onLine: (chunk, start, end, dropped) => {
        if (!logs.line('stderr', chunk, start, end, dropped)) gate.refuse('stderr');
      },
    });
    const gate = createOutputGate(stdio, stderr, options.whenLogRoom);
    const connection = createStdioConnection({
      input: stdio.stdin,
      output: stdio.stdout,
      onStrayLine: (chunk, start, end, dropped) => {
        if (!logs.line('stdout', chunk, start, end, dropped)) gate.refuse('stdout');
      },
      onOversizeMessage: (bytes) =>
        logs.system(`dropped a ${bytes}-byte message from the MCP server (over the size limit)`),
    });
    // Until the gateway binds, the agent is the child's only peer.
    connection.onmessage = (message) => answerUnrouted(connection, message);
    stdio.stderr.on('data', (chunk: Buffer) => gate.feed(chunk));
    stdio.stderr.once('end', () => stderr.end());
    // Pipe errors end in the process's exit, which `exited` reports; a stream
    // 'error' without a listener would take the whole agent down instead.
    stdio.stdin.on('error', () => undefined);
    stdio.stdout.on('error', () => undefined);
    stdio.stderr.on('error', () => undefined);

    const current: Run = {
      child,
      stdio,
      uid: base.uid,
      warm: base.warm,
      pid,
      startTicks: base.startTicks,
      spawnedAt: base.spawnedAt,
      connection,
      exited: undefined as unknown as Promise<ChildExit>,
      exit: undefined,
      stopping: false,
      killReason: undefined,
      lastCpuTicks: base.cpuTicks,
      lastSampleAt: Date.now(),
    };
    /** Records the exit at once; resolves once the FIFO folder is gone too. */
    const settle = async (exit: ChildExit): Promise<ChildExit> => {
      current.exit = exit;
      connection.close(`the MCP server ${exit.reason}`);
      stdio.destroy();
      if (pid !== 0) {
        // Anything it left behind in its group goes with it.
        killGroup(pid, 'SIGKILL');
        options.registry?.remove(pid);
      }
      // Whatever else runs as its user goes with it (a double fork escapes the group).
      if (base.uid !== undefined) options.users?.reclaim(base.uid);
      logs.flushNotice();
      await removeChildStdio(stdio.dir).catch(() => undefined);
      return exit;
    };
    /** After the exit, the last lines (the crash) still in the pipes are read. */
    const drainThen = (finish: () => void): void => {
      // A dead child writes no more, so backpressure no longer applies.
      gate.open();
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
        stderr.end();
        finish();
      }
    };
    current.exited = new Promise<ChildExit>((resolve) => {
      if (child === undefined) {
        // Re-attached: not our child, so no exit event and no exit status. It is
        // gone when its pid is (checked when its stdout closes, and now and then).
        let soon: NodeJS.Timeout | undefined;
        let gone = false;
        const check = (): void => {
          if (gone || isRunning(pid, base.startTicks)) return;
          gone = true;
          clearInterval(poll);
          clearInterval(soon);
          drainThen(() =>
            resolve(
              settle({
                code: null,
                signal: null,
                reason:
                  current.killReason ??
                  'exited (exit status unknown: it was started by a previous agent)',
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
        return;
      }
      child.on('error', (error: NodeJS.ErrnoException) => {
        // Without a pid, spawn itself failed (ENOENT, EACCES) and no exit follows.
        if (pid === 0)
          resolve(
            settle({ code: null, signal: null, reason: `could not be spawned (${error.code})` }),
          );
        else logs.system(`process error: ${error.code ?? error.message}`);
      });
      child.once('exit', (code, signal) => {
        drainThen(() => {
          const reason =
            current.killReason ??
            (signal !== null ? `killed by ${signal}` : `exited with code ${code}`);
          resolve(settle({ code, signal, reason }));
        });
      });
    });
    void current.exited.then((exit) =>
      emit({
        type: 'exited',
        pid,
        expected: current.stopping,
        uptimeMs: Date.now() - current.spawnedAt,
        ...exit,
      }),
    );
    return current;
  }

  /**
   * Re-attaches to the child a previous agent recorded: its FIFOs opened again,
   * its recorded `initialize` answer used. Undefined if it is gone meanwhile
   * (then it is killed for good and its record dropped).
   */
  function adoptRun(record: ChildRecord): Run | undefined {
    let stdio: ChildStdioStreams | undefined;
    if (
      record.stdioDir !== undefined &&
      record.initializeResult !== undefined &&
      isRunning(record.pid, record.startTicks)
    ) {
      try {
        stdio = attachChildStdio(record.stdioDir);
      } catch (error) {
        logs.system(
          `could not re-attach to pid ${record.pid} (${(error as NodeJS.ErrnoException).code ?? String(error)}); starting a new process`,
        );
      }
    }
    if (stdio === undefined) {
      killSurvivor(record, options);
      return undefined;
    }
    if (record.uid !== undefined) {
      options.users?.claim(record.uid);
      userId = record.uid;
    }
    const current = wireRun({
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
    return current;
  }

  /** Spawns (or adopts a warm child) and handshakes; on failure the child is gone before this rejects. */
  async function launch(
    attempt: number,
    mayTakeWarm = attempt === 0,
  ): Promise<ChildInitializeResult> {
    state = 'starting';
    const current = await spawnChild(attempt, mayTakeWarm ? options.takeWarmChild?.() : undefined);
    if (state !== 'starting') {
      // stop() came while the FIFOs were being made: it found no child to end.
      await terminate(current, 0);
      throw stoppedWhileStarting();
    }
    run = current;
    const startedAt = performance.now();
    if (current.pid === 0) {
      const exit = await current.exited;
      throw new McpServerStartError(`MCP server ${label} ${exit.reason}`, {
        label,
        reason: 'spawn_failed',
      });
    }
    let result: ChildInitializeResult;
    try {
      const answer = await Promise.race([
        current.connection.request(
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
          settings.handshakeTimeoutMs,
        ),
        current.exited.then((exit) => {
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
      result = parsed.data;
    } catch (error) {
      if (current.stopping && current.killReason === undefined) throw stoppedWhileStarting();
      const startError = toStartError(error);
      if (current.exit === undefined) {
        current.killReason = startError.message.slice(`MCP server ${label} `.length);
        await terminate(current, 0);
      }
      if (current.warm && state === 'starting') {
        // A pre-spawned child may have died idle just before it was taken: a cold
        // spawn decides. The same failure again (a bad key, a bad config) is reported then.
        logs.system(
          `the pre-spawned MCP server failed (${startError.message}); spawning a new one`,
        );
        return launch(attempt, false);
      }
      throw startError;
    }
    if (current.stopping || current.exit !== undefined) throw stoppedWhileStarting();
    current.connection.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // With its answer on record, a new agent can take this child over.
    options.registry?.add(recordOf(current, result));
    initializeResult = result;
    state = 'ready';
    void current.exited.then((exit) => onExit(current, exit));
    emit({
      type: 'ready',
      pid: current.pid,
      adopted: false,
      handshakeMs: performance.now() - startedAt,
      connection: current.connection,
      initializeResult: result,
    });
    return result;
  }

  /** Takes over a previous agent's child, or starts a new one if that is gone. */
  async function adopt(record: ChildRecord): Promise<ChildInitializeResult> {
    const current = adoptRun(record);
    const result = record.initializeResult;
    if (current === undefined || result === undefined) return launch(0);
    run = current;
    initializeResult = result;
    state = 'ready';
    options.registry?.add(recordOf(current, result));
    void current.exited.then((exit) => onExit(current, exit));
    emit({
      type: 'ready',
      pid: current.pid,
      adopted: true,
      handshakeMs: 0,
      connection: current.connection,
      initializeResult: result,
    });
    return result;
  }

  function stoppedWhileStarting(): McpServerStartError {
    return new McpServerStartError(`MCP server ${label} was stopped while starting`, {
      label,
      reason: 'stopped',
    });
  }

  function toStartError(error: unknown): McpServerStartError {
    if (error instanceof McpServerStartError) return error;
    if (error instanceof RpcRequestError && error.rpcCode === RpcErrorCode.REQUEST_TIMEOUT)
      return new McpServerStartError(
        `MCP server ${label} did not answer initialize within ${settings.handshakeTimeoutMs} ms; it was killed`,
        { label, reason: 'handshake_timeout', timeoutMs: settings.handshakeTimeoutMs },
      );
    const message = error instanceof Error ? error.message : String(error);
    return new McpServerStartError(
      `MCP server ${label} failed its initialize handshake: ${redactor.redact(message)}`,
      { label, reason: 'handshake_failed' },
      { cause: error },
    );
  }

  function onExit(current: Run, exit: ChildExit): void {
    const uptimeMs = Date.now() - current.spawnedAt;
    if (current.stopping || state === 'stopping' || state === 'stopped') return;
    initializeResult = undefined;
    if (uptimeMs >= settings.stableAfterMs) failuresInARow = 0;
    scheduleRestart(exit);
  }

  function scheduleRestart(exit: ChildExit): void {
    failuresInARow += 1;
    if (failuresInARow > settings.maxRestarts) {
      state = 'failed';
      run = undefined;
      releaseUser();
      emit({
        type: 'failed',
        ...exit,
        reason: `${exit.reason}; gave up after ${settings.maxRestarts} restarts`,
        stderrTail: logs.tail(),
      });
      return;
    }
    const delayMs = Math.min(
      settings.backoffInitialMs * 2 ** (failuresInARow - 1),
      settings.backoffMaxMs,
    );
    state = 'backoff';
    emit({ type: 'restarting', attempt: failuresInARow, delayMs, reason: exit.reason });
    backoffTimer = setTimeout(() => {
      backoffTimer = undefined;
      if (state !== 'backoff') return;
      restarts += 1;
      launch(failuresInARow).catch((error: unknown) => {
        if (state === 'stopping' || state === 'stopped') return;
        const startError = error instanceof McpServerStartError ? error : undefined;
        const exit = run?.exit;
        scheduleRestart({
          code: exit?.code ?? null,
          signal: exit?.signal ?? null,
          reason: startError?.message ?? String(error),
        });
      });
    }, delayMs);
  }

  /**
   * Ends one child: our end of its stdin closed (no EOF for it: it holds the
   * FIFO's other end itself), SIGTERM to its group, SIGKILL after `graceMs`.
   */
  async function terminate(current: Run, graceMs: number): Promise<ChildExit> {
    current.stopping = true;
    if (current.exit !== undefined) return current.exit;
    if (current.pid === 0) return current.exited;
    current.stdio.stdin.end();
    if (graceMs > 0) {
      killGroup(current.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace'>((resolve) => {
        timer = setTimeout(() => resolve('grace'), graceMs);
      });
      const outcome = await Promise.race([current.exited, graceOver]);
      clearTimeout(timer);
      if (outcome !== 'grace') return outcome;
    }
    killGroup(current.pid, 'SIGKILL');
    return current.exited;
  }

  const supervisor: Supervisor = {
    start() {
      if (startCalled)
        return Promise.reject(new Error('a supervisor starts once; create a new one to restart'));
      startCalled = true;
      return (options.adopt !== undefined ? adopt(options.adopt) : launch(0)).catch(
        (error: unknown) => {
          if (state !== 'stopping' && state !== 'stopped') {
            state = 'failed';
            const exit = run?.exit;
            emit({
              type: 'failed',
              code: exit?.code ?? null,
              signal: exit?.signal ?? null,
              reason: error instanceof Error ? error.message : String(error),
              stderrTail: logs.tail(),
            });
          }
          run = undefined;
          releaseUser();
          throw error;
        },
      );
    },
    stop() {
      stopPromise ??= (async () => {
        const previous = state;
        state = 'stopping';
        try {
          clearTimeout(backoffTimer);
          backoffTimer = undefined;
          if (run !== undefined && previous !== 'failed')
            await terminate(run, settings.stopGraceMs);
        } finally {
          run = undefined;
          initializeResult = undefined;
          releaseUser();
          state = 'stopped';
          emit({ type: 'stopped' });
        }
      })();
      return stopPromise;
    },
    get state() {
      return state;
    },
    get pid() {
      return run !== undefined && run.exit === undefined && run.pid !== 0 ? run.pid : undefined;
    },
    get restarts() {
      return restarts;
    },
    get droppedLogLines() {
      return logs.dropped;
    },
    get connection() {
      return state === 'ready' ? run?.connection : undefined;
    },
    get initializeResult() {
      return state === 'ready' ? initializeResult : undefined;
    },
    uptimeMs() {
      return run !== undefined && run.exit === undefined ? Date.now() - run.spawnedAt : 0;
    },
    sample() {
      const current = run;
      if (current === undefined || current.exit !== undefined || current.pid === 0)
        return undefined;
      const stat = readProcStat(current.pid);
      const resident = readResidentPages(current.pid);
      if (stat === undefined || resident === undefined) return undefined;
      const now = Date.now();
      const elapsedMs = now - current.lastSampleAt;
      const ticks = stat.cpuTicks - current.lastCpuTicks;
      current.lastCpuTicks = stat.cpuTicks;
      current.lastSampleAt = now;
      const cpuPercent = elapsedMs > 0 ? ((ticks * (1000 / CLOCK_TICKS)) / elapsedMs) * 100 : 0;
      return {
        pid: current.pid,
        cpuPercent,
        rssBytes: resident * pageSize(),
        uptimeMs: now - current.spawnedAt,
      };
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  return supervisor;
}

interface LogSink {
  /** false: onLog had no room for this line (it was still taken). */
  line(
    stream: 'stderr' | 'stdout',
    chunk: Buffer,
    start: number,
    end: number,
    droppedBytes: number,
  ): boolean;
  system(text: string): void;
  /** Reports lines dropped since the last report, if any. */
  flushNotice(): void;
  /** The last stderr lines, redacted, oldest first. */
  tail(): string[];
  readonly dropped: number;
}

/**
 * Bounded log handling: a token bucket caps lines per second (a flooding child
 * costs the agent a counter increment per line, not memory or a decode), each
 * line is cut to `maxLogLineChars`, and secrets are redacted before the line
 * leaves. The last stderr lines are kept raw (a few KiB) for failure reasons.
 */
function createLogSink(
  settings: typeof DEFAULTS,
  redactor: Redactor,
  onLog: ((line: ChildLogLine) => boolean | void) | undefined,
): LogSink {
  const ratePerMs = settings.logLinesPerSecond / 1000;
  let tokens = settings.logBurst;
  let refilledAt = performance.now();
  let dropped = 0;
  let droppedSinceNotice = 0;
  // The heads of the last stderr lines, in a ring that grows to STDERR_TAIL_LINES
  // entries: a child that writes a line or two keeps a few hundred bytes here,
  // not a fixed 10 KiB buffer (100 instances, bench density).
  const tailHeads: string[] = [];
  /** True where the head is not the whole line (a secret may be cut there). */
  const tailCut: boolean[] = [];
  let tailNext = 0;

  const deliver = (stream: ChildLogLine['stream'], text: string): boolean =>
    onLog?.({ stream, text, at: Date.now() }) !== false;
  const flushNotice = (): void => {
    if (droppedSinceNotice === 0) return;
    const count = droppedSinceNotice;
    droppedSinceNotice = 0;
    deliver(
      'system',
      `dropped ${count} lines of MCP server output (over ${settings.logLinesPerSecond} lines/s)`,
    );
  };

  return {
    line(stream, chunk, start, end, droppedBytes) {
      if (stream === 'stderr') {
        tailHeads[tailNext] = chunk.toString(
          'utf8',
          start,
          Math.min(end, start + STDERR_TAIL_LINE_BYTES),
        );
        tailCut[tailNext] = droppedBytes > 0 || end - start > STDERR_TAIL_LINE_BYTES;
        tailNext = (tailNext + 1) % STDERR_TAIL_LINES;
      }
      if (onLog === undefined) return true;
      if (tokens < 1) {
        const now = performance.now();
        tokens = Math.min(settings.logBurst, tokens + (now - refilledAt) * ratePerMs);
        refilledAt = now;
        if (tokens < 1) {
          dropped += 1;
          droppedSinceNotice += 1;
          return true;
        }
      }
      tokens -= 1;
      flushNotice();
      const raw = chunk.toString('utf8', start, end);
      let text = redactor.redactHead(raw, settings.maxLogLineChars, droppedBytes > 0);
      if (droppedBytes > 0 || raw.length > settings.maxLogLineChars)
        text += ` [line truncated, ${Buffer.byteLength(raw) + droppedBytes} bytes]`;
      return deliver(stream, text);
    },
    system: (text) => void deliver('system', text),
    flushNotice,
    tail() {
      const lines: string[] = [];
      // Oldest first: once the ring is full, the oldest entry is the next one to be overwritten.
      const count = tailHeads.length;
      const oldest = count < STDERR_TAIL_LINES ? 0 : tailNext;
      for (let i = 0; i < count; i++) {
        const slot = (oldest + i) % count;
        lines.push(redactor.redactHead(tailHeads[slot]!, STDERR_TAIL_LINE_BYTES, tailCut[slot]!));
      }
      return lines;
    },
    get dropped() {
      return dropped;
    },
  };
}

/** Bytes of stderr handed to the line splitter at a time: what a refusal can let through per child. */
const GATE_SLICE_BYTES = 4_096;

interface OutputGate {
  /** Splits a stderr chunk into lines, a slice at a time; holds the rest once closed. */
  feed(chunk: Buffer): void;
  /** A line was refused: stop reading until the consumer has room. */
  refuse(stream: 'stderr' | 'stdout'): void;
  /** The child exited: read everything left, room or not. */
  open(): void;
}

/**
 * Backpressure from the log consumer to the child: while closed, the child's
 * stderr is not read (the rest of a chunk already read is held), so the pipe
 * fills and the child blocks on its own write; nothing is dropped. Without
 * `whenRoom` nobody could reopen it, so it never closes.
 */
function createOutputGate(
  stdio: ChildStdioStreams,
  splitter: LineSplitter,
  whenRoom: ((resume: () => void) => void) | undefined,
): OutputGate {
  let closed = false;
  let opened = false;
  let stdoutPaused = false;
  let held: Buffer | undefined;

  const feed = (chunk: Buffer): void => {
    let start = 0;
    while (start < chunk.length) {
      if (closed) {
        // A copy: the stream may reuse the chunk's memory after this callback.
        const rest = Buffer.from(chunk.subarray(start));
        held = held ? Buffer.concat([held, rest]) : rest;
        return;
      }
      let end = chunk.length;
      if (end - start > GATE_SLICE_BYTES) {
        const newline = chunk.indexOf(10, start + GATE_SLICE_BYTES);
        if (newline !== -1) end = newline + 1;
      }
      splitter.push(start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end));
      start = end;
    }
  };

  const resume = (): void => {
    if (!closed) return;
    closed = false;
    const rest = held;
    held = undefined;
    if (rest) feed(rest);
    if (closed) return; // refused again; whenRoom was asked again
    stdio.stderr.resume();
    if (stdoutPaused) {
      stdoutPaused = false;
      stdio.stdout.resume();
    }
  };

  return {
    feed,
    refuse(stream) {
      if (opened || whenRoom === undefined) return;
      if (stream === 'stdout' && !stdoutPaused) {
        stdoutPaused = true;
        stdio.stdout.pause();
      }
      if (closed) return;
      closed = true;
      stdio.stderr.pause();
      whenRoom(resume);
    },
    open() {
      opened = true;
      resume();
    },
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}
