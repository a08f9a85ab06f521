// The process supervisor: runs one stdio MCP server as a child in its own
// process group, performs the MCP handshake, restarts it with backoff, stops it
// (SIGTERM, then SIGKILL), and turns its output into bounded, redacted lines.
// It owns the child, its pipes, its timers and its entry in children.json.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { McpServerStartError } from '../core/errors.js';
import { createRedactor, type Redactor } from './redactor.js';
import {
  answerUnrouted,
  createLineSplitter,
  createStdioConnection,
  type LineSplitter,
  RpcErrorCode,
  RpcRequestError,
  type StdioConnection,
} from './stdio-connection.js';

/** The protocol version the agent asks a child for; the child answers with its own. */
export const AGENT_PROTOCOL_VERSION = '2025-11-25';

/** What the child said about itself in its `initialize` answer. */
export const ChildInitializeResult = z.looseObject({
  protocolVersion: z.string(),
  capabilities: z.record(z.string(), z.unknown()),
  serverInfo: z.looseObject({ name: z.string(), version: z.string() }),
  instructions: z.string().optional(),
});
export type ChildInitializeResult = z.infer<typeof ChildInitializeResult>;

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
  /** Names the child in children.json and in error messages (an instance id). */
  label?: string;
  /** Records the child's process group so a restarted agent can kill orphans. */
  registry?: ChildRegistry;
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
   * First start only: a pre-spawned child of the same command (agent/warm-pool.ts)
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
  child: ChildProcess;
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

  const logs = createLogSink(settings, redactor, options.onLog);

  const emit = (event: SupervisorEvent): void => {
    for (const listener of listeners) listener(event);
  };

  const env: Record<string, string> = { ...baseChildEnv(options.cwd), ...options.env };

  function spawnChild(attempt: number, warm: WarmChild | undefined): Run {
    mkdirSync(options.cwd, { recursive: true });
    const child =
      warm?.child ??
      spawn(options.command, options.args ?? [], {
        cwd: options.cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        // Its own process group, so stop and killOrphans reach its children too.
        detached: true,
      });
    const pid = child.pid ?? 0;
    const stderr = createLineSplitter({
      maxLineBytes: settings.maxLogLineChars + redactor.longestSecret,
      onLine: (chunk, start, end, dropped) => {
        if (!logs.line('stderr', chunk, start, end, dropped)) gate.refuse('stderr');
      },
    });
    const gate = createOutputGate(child, stderr, options.whenLogRoom);
    const connection = createStdioConnection({
      input: child.stdin!,
      output: child.stdout!,
      onStrayLine: (chunk, start, end, dropped) => {
        if (!logs.line('stdout', chunk, start, end, dropped)) gate.refuse('stdout');
      },
      onOversizeMessage: (bytes) =>
        logs.system(`dropped a ${bytes}-byte message from the MCP server (over the size limit)`),
    });
    // Until the gateway binds, the agent is the child's only peer.
    connection.onmessage = (message) => answerUnrouted(connection, message);
    child.stderr!.on('data', (chunk: Buffer) => gate.feed(chunk));
    child.stderr!.once('end', () => stderr.end());
    // Pipe errors end in the process's exit, which `exited` reports; a stream
    // 'error' without a listener would take the whole agent down instead.
    child.stdout!.on('error', () => undefined);
    child.stderr!.on('error', () => undefined);

    const stat = pid === 0 ? undefined : readProcStat(pid);
    const current: Run = {
      child,
      warm: warm !== undefined,
      pid,
      startTicks: stat?.startTicks,
      spawnedAt: Date.now(),
      connection,
      exited: undefined as unknown as Promise<ChildExit>,
      exit: undefined,
      stopping: false,
      killReason: undefined,
      // A warm child's load, before it was taken, is not this instance's CPU use.
      lastCpuTicks: warm !== undefined ? (stat?.cpuTicks ?? 0) : 0,
      lastSampleAt: Date.now(),
    };
    const settle = (exit: ChildExit): ChildExit => {
      current.exit = exit;
      connection.close(`the MCP server ${exit.reason}`);
      if (pid !== 0) {
        // Anything it left behind in its group goes with it.
        killGroup(pid, 'SIGKILL');
        options.registry?.remove(pid);
      }
      logs.flushNotice();
      return exit;
    };
    current.exited = new Promise<ChildExit>((resolve) => {
      child.on('error', (error: NodeJS.ErrnoException) => {
        // Without a pid, spawn itself failed (ENOENT, EACCES) and no exit follows.
        if (pid === 0)
          resolve(
            settle({ code: null, signal: null, reason: `could not be spawned (${error.code})` }),
          );
        else logs.system(`process error: ${error.code ?? error.message}`);
      });
      child.once('exit', (code, signal) => {
        // Let the pipes drain so the last stderr lines (the crash) are seen:
        // a dead child writes no more, so backpressure no longer applies.
        gate.open();
        const timer = setTimeout(finish, PIPE_DRAIN_MS);
        child.once('close', finish);
        function finish(): void {
          clearTimeout(timer);
          child.off('close', finish);
          stderr.end();
          const reason =
            current.killReason ??
            (signal !== null ? `killed by ${signal}` : `exited with code ${code}`);
          resolve(settle({ code, signal, reason }));
        }
      });
    });
    if (pid !== 0) {
      options.registry?.add({
        pid,
        pgid: pid,
        startTicks: current.startTicks,
        label,
        command: options.command,
        spawnedAt: current.spawnedAt,
      });
      emit({ type: 'spawned', pid, attempt, warm: warm !== undefined });
    }
    // Listeners are in place: now the warm child may start talking.
    warm?.bind({ env: options.env ?? {}, cwd: options.cwd });
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

  /** Spawns (or adopts a warm child) and handshakes; on failure the child is gone before this rejects. */
  async function launch(
    attempt: number,
    mayTakeWarm = attempt === 0,
  ): Promise<ChildInitializeResult> {
    state = 'starting';
    const current = spawnChild(attempt, mayTakeWarm ? options.takeWarmChild?.() : undefined);
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
    initializeResult = result;
    state = 'ready';
    void current.exited.then((exit) => onExit(current, exit));
    emit({
      type: 'ready',
      pid: current.pid,
      handshakeMs: performance.now() - startedAt,
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

  /** Ends one child: stdin closed, SIGTERM to its group, SIGKILL after `graceMs`. */
  async function terminate(current: Run, graceMs: number): Promise<ChildExit> {
    current.stopping = true;
    if (current.exit !== undefined) return current.exit;
    if (current.pid === 0) return current.exited;
    current.child.stdin?.end();
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
      return launch(0).catch((error: unknown) => {
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
        throw error;
      });
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
  child: ChildProcess,
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
    child.stderr?.resume();
    if (stdoutPaused) {
      stdoutPaused = false;
      child.stdout?.resume();
    }
  };

  return {
    feed,
    refuse(stream) {
      if (opened || whenRoom === undefined) return;
      if (stream === 'stdout' && !stdoutPaused) {
        stdoutPaused = true;
        child.stdout?.pause();
      }
      if (closed) return;
      closed = true;
      child.stderr?.pause();
      whenRoom(resume);
    },
    open() {
      opened = true;
      resume();
    },
  };
}

/** Sends `signal` to a whole process group; a group already gone is fine. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, entry]) => entry !== undefined),
  ) as Partial<T>;
}

// --- /proc readers (Linux; no dependency) -----------------------------------

/** USER_HZ: 100 on every Linux architecture Node supports. */
const CLOCK_TICKS = 100;
let cachedPageSize: number | undefined;

/** The kernel's page size, from the auxiliary vector (AT_PAGESZ); 4096 if unreadable. */
function pageSize(): number {
  if (cachedPageSize !== undefined) return cachedPageSize;
  cachedPageSize = 4096;
  try {
    const auxv = readFileSync('/proc/self/auxv');
    for (let offset = 0; offset + 16 <= auxv.length; offset += 16) {
      const type = auxv.readBigUInt64LE(offset);
      if (type === 0n) break;
      if (type === 6n) {
        cachedPageSize = Number(auxv.readBigUInt64LE(offset + 8));
        break;
      }
    }
  } catch {
    // Not Linux, or /proc hidden: keep the common default.
  }
  return cachedPageSize;
}

interface ProcStat {
  state: string;
  pgid: number;
  cpuTicks: number;
  startTicks: number;
}

/** Fields of /proc/<pid>/stat; the command name may hold spaces, so split after its `)`. */
function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state) of proc(5).
  return {
    state: fields[0] ?? '',
    pgid: Number(fields[2]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    startTicks: Number(fields[19]),
  };
}

/** The kernel start time of `pid` (for a children.json record), if it is alive. */
export function processStartTicks(pid: number): number | undefined {
  return readProcStat(pid)?.startTicks;
}

function readResidentPages(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
  } catch {
    return undefined;
  }
}

// --- children.json: orphans after an agent crash ----------------------------

export interface ChildRecord {
  pid: number;
  pgid: number;
  /** Kernel start time of the process, to tell it from a later one reusing the pid. */
  startTicks?: number;
  label: string;
  command: string;
  spawnedAt: number;
}

export interface ChildRegistry {
  add(record: ChildRecord): void;
  remove(pid: number): void;
  /** SIGKILLs every recorded group now (for a `process.on('exit')` hook). */
  killAllSync(): void;
}

const CHILDREN_FILE = 'children.json';

/**
 * The agent's record of the process groups it runs, in `<stateDir>/children.json`,
 * rewritten atomically (temp file + rename) on every change so that a crash at
 * any moment leaves a readable file for the next agent's `killOrphans`.
 */
export function createChildRegistry(stateDir: string): ChildRegistry {
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, CHILDREN_FILE);
  const records = new Map<number, ChildRecord>();
  const write = (): void => {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify([...records.values()]));
    renameSync(temp, file);
  };
  write();
  return {
    add(record) {
      records.set(record.pid, record);
      write();
    },
    remove(pid) {
      if (records.delete(pid)) write();
    },
    killAllSync() {
      for (const record of records.values()) killGroup(record.pgid, 'SIGKILL');
    },
  };
}

const ChildRecordsFile = z.array(
  z.object({
    pid: z.number().int().positive(),
    pgid: z.number().int().positive(),
    startTicks: z.number().optional(),
    label: z.string(),
    command: z.string(),
    spawnedAt: z.number(),
  }),
);

/**
 * Kills the process groups a previous agent left in `<stateDir>/children.json`
 * and removes the file. A group whose leader's pid now belongs to a different
 * process (another start time) is left alone. Resolves with the records killed
 * once their leaders are gone (or after `waitMs`).
 */
export async function killOrphans(stateDir: string, waitMs = 5_000): Promise<ChildRecord[]> {
  const file = path.join(stateDir, CHILDREN_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  let records: ChildRecord[];
  try {
    records = ChildRecordsFile.parse(JSON.parse(text));
  } catch {
    // A torn or foreign file: nothing in it can be trusted to be ours.
    await rm(file, { force: true });
    return [];
  }
  const groups = liveProcessGroups();
  const killed: ChildRecord[] = [];
  const victims: number[] = [];
  for (const record of records) {
    const members = groups.get(record.pgid);
    if (members === undefined) continue; // the whole group is gone already
    const leader = readProcStat(record.pid);
    // The pid now names another process (another start time): not our group.
    // With the leader gone, the members can only be ours: the kernel does not
    // hand out a pid that still names a live process group.
    if (
      leader !== undefined &&
      record.startTicks !== undefined &&
      leader.startTicks !== record.startTicks
    )
      continue;
    killGroup(record.pgid, 'SIGKILL');
    killed.push(record);
    victims.push(...members);
  }
  const deadline = Date.now() + waitMs;
  while (victims.some((pid) => isAlive(pid)) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  await rm(file, { force: true });
  return killed;
}

/** Live (not zombie) processes by process group, from one pass over /proc. */
function liveProcessGroups(): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const stat = readProcStat(pid);
    if (stat === undefined || stat.state === 'Z') continue;
    const members = groups.get(stat.pgid);
    if (members === undefined) groups.set(stat.pgid, [pid]);
    else members.push(pid);
  }
  return groups;
}

function isAlive(pid: number): boolean {
  const stat = readProcStat(pid);
  // A zombie waiting for its parent to reap it is dead for our purpose.
  return stat !== undefined && stat.state !== 'Z';
}
