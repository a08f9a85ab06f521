// The state one supervisor shares with the modules that act for it (spawn,
// handshake, re-attach, start and restart): its settings, its current child
// run, its lifecycle state and the OS user its children run as.
import path from 'node:path';
import type { ChildInitializeResult } from './child-registry.js';
import { createLogSink, type LogSink, type LogSinkSettings } from './child-output.js';
import type { ChildRun } from './child-run.js';
import { DEFAULT_STDIO_ROOT } from './child-stdio.js';
import { createRedactor, type Redactor } from './redactor.js';
import {
  createRestartPolicy,
  type RestartPolicy,
  type RestartPolicySettings,
} from './restart-policy.js';
import type { SupervisorEvent, SupervisorOptions, SupervisorState } from './supervisor.js';

export interface SupervisorSettings extends LogSinkSettings, RestartPolicySettings {
  handshakeTimeoutMs: number;
  stopGraceMs: number;
}

const DEFAULT_SETTINGS: SupervisorSettings = {
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

export interface SupervisorContext {
  readonly options: SupervisorOptions;
  readonly settings: SupervisorSettings;
  /** Names the child in its record and in error messages. */
  readonly label: string;
  /** The minimal environment with the instance's variables on top. */
  readonly env: Readonly<Record<string, string>>;
  readonly stdioRoot: string;
  readonly redactor: Redactor;
  readonly logs: LogSink;
  readonly restartPolicy: RestartPolicy;
  readonly listeners: Set<(event: SupervisorEvent) => void>;
  state: SupervisorState;
  /** The current child, from spawn (or re-attach) until it is given up or stopped. */
  run: ChildRun | undefined;
  initializeResult: ChildInitializeResult | undefined;
  /** Respawns after unexpected exits, over the supervisor's life. */
  restarts: number;
  backoffTimer: NodeJS.Timeout | undefined;
  /** This instance's OS user (MINIMCP_CHILD_UIDS), the same for all its children. */
  userId: number | undefined;
}

export function createSupervisorContext(
  options: SupervisorOptions,
  env: Readonly<Record<string, string>>,
): SupervisorContext {
  const settings = settingsOf(options);
  const redactor = createRedactor(options.secrets ?? []);
  const listeners = new Set<(event: SupervisorEvent) => void>();
  if (options.onEvent) listeners.add(options.onEvent);
  return {
    options,
    settings,
    label: options.label ?? path.basename(options.command),
    env,
    stdioRoot: options.stdioRoot ?? DEFAULT_STDIO_ROOT,
    redactor,
    logs: createLogSink(settings, redactor, options.onLog),
    restartPolicy: createRestartPolicy(settings),
    listeners,
    state: 'idle',
    run: undefined,
    initializeResult: undefined,
    restarts: 0,
    backoffTimer: undefined,
    userId: undefined,
  };
}

/** The defaults, with each setting the options give instead. */
function settingsOf(options: SupervisorOptions): SupervisorSettings {
  const settings = { ...DEFAULT_SETTINGS };
  for (const key of Object.keys(DEFAULT_SETTINGS) as (keyof SupervisorSettings)[]) {
    const value = options[key];
    if (value !== undefined) settings[key] = value;
  }
  return settings;
}

export function emit(ctx: SupervisorContext, event: SupervisorEvent): void {
  for (const listener of ctx.listeners) listener(event);
}

/** stop() was called: nothing may start or restart a child any more. */
export function isStopping(ctx: SupervisorContext): boolean {
  return ctx.state === 'stopping' || ctx.state === 'stopped';
}

/** Gives the user back once no child of this supervisor will run again (stopped or failed). */
export function releaseUser(ctx: SupervisorContext): void {
  if (ctx.userId === undefined) return;
  ctx.options.users?.release(ctx.userId);
  ctx.userId = undefined;
}

/** A cleanup step failed and its error was swallowed: say which step, to whoever listens. */
export function cleanupFailed(ctx: SupervisorContext, step: string, error: unknown): void {
  ctx.options.onDiagnostic?.('a supervisor cleanup step failed', {
    label: ctx.label,
    step,
    err: error instanceof Error ? error.message : String(error),
  });
}
