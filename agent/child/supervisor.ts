// The process supervisor: runs one stdio MCP server as a child in its own
// process group, performs the MCP handshake, restarts it with backoff, stops it
// (SIGTERM, then SIGKILL), and turns its output into bounded, redacted lines.
// This module is the factory that wires the parts: spawn (child-spawn.ts), one
// run's pipes and exit (child-run.ts), handshake (handshake.ts), re-attach
// (reattach.ts), start and restart (launch.ts, restart-policy.ts), output (child-output.ts).
import type { ChildProcess } from 'node:child_process';
import type { ChildLogLine } from './child-output.js';
import type { ChildInitializeResult, ChildRecord, ChildRegistry } from './child-registry.js';
import { sampleRun, terminate } from './child-run.js';
import { baseChildEnv } from './child-spawn.js';
import type { ChildStdioStreams } from './child-stdio.js';
import type { ChildUsers } from './child-users.js';
import { startChild } from './launch.js';
import type { StdioConnection } from './stdio-connection.js';
import { createSupervisorContext, emit, releaseUser } from './supervisor-context.js';

export { ChildInitializeResult } from './child-registry.js';
export type { ChildRecord, ChildRegistry } from './child-registry.js';
export type { ChildLogLine } from './child-output.js';
export { AGENT_PROTOCOL_VERSION } from './handshake.js';
export { baseChildEnv };

export type SupervisorState =
  'idle' | 'starting' | 'ready' | 'backoff' | 'failed' | 'stopping' | 'stopped';

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
  /** A cleanup step failed and was skipped (which step, and the error), for the agent's own log. */
  onDiagnostic?(message: string, context: Record<string, unknown>): void;
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

export function createSupervisor(options: SupervisorOptions): Supervisor {
  const ctx = createSupervisorContext(options, { ...baseChildEnv(options.cwd), ...options.env });
  let startCalled = false;
  let stopPromise: Promise<void> | undefined;

  async function stop(): Promise<void> {
    const previous = ctx.state;
    ctx.state = 'stopping';
    try {
      clearTimeout(ctx.backoffTimer);
      ctx.backoffTimer = undefined;
      if (ctx.run !== undefined && previous !== 'failed')
        await terminate(ctx.run, ctx.settings.stopGraceMs);
    } finally {
      ctx.run = undefined;
      ctx.initializeResult = undefined;
      releaseUser(ctx);
      ctx.state = 'stopped';
      emit(ctx, { type: 'stopped' });
    }
  }

  return {
    start() {
      if (startCalled)
        return Promise.reject(new Error('a supervisor starts once; create a new one to restart'));
      startCalled = true;
      return startChild(ctx);
    },
    stop() {
      stopPromise ??= stop();
      return stopPromise;
    },
    get state() {
      return ctx.state;
    },
    get pid() {
      const { run } = ctx;
      return run !== undefined && run.exit === undefined && run.pid !== 0 ? run.pid : undefined;
    },
    get restarts() {
      return ctx.restarts;
    },
    get droppedLogLines() {
      return ctx.logs.dropped;
    },
    get connection() {
      return ctx.state === 'ready' ? ctx.run?.connection : undefined;
    },
    get initializeResult() {
      return ctx.state === 'ready' ? ctx.initializeResult : undefined;
    },
    uptimeMs() {
      const { run } = ctx;
      return run !== undefined && run.exit === undefined ? Date.now() - run.spawnedAt : 0;
    },
    sample: () => sampleRun(ctx.run),
    subscribe(listener) {
      ctx.listeners.add(listener);
      return () => ctx.listeners.delete(listener);
    },
  };
}
