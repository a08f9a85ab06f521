// Pre-spawned children of the built-in types: each has loaded its code and
// waits for its instance on a pipe (mcp-servers/shared/binding.ts), so a new
// instance of such a type starts in the time of a handshake rather than of a
// Node start. The pool owns its idle children (their registry records
// included) until one is taken; the taker's supervisor owns it from then on.
// @see docs/decisions/0006-warm-pool.md
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { Writable } from 'node:stream';
import type { ChildRegistry } from './child-registry.js';
import type { ChildUsers } from './child-users.js';
import {
  DEFAULT_STDIO_ROOT,
  prepareChildStdio,
  removeChildStdio,
  type ChildStdioStreams,
} from './child-stdio.js';
import { killGroup, processStartTicks } from './proc.js';
import { baseChildEnv, type WarmChild } from './supervisor.js';

/** One pooled type: how its children are started and how many wait. */
export interface WarmPoolEntry {
  type: string;
  command: string;
  args: readonly string[];
  size: number;
}

export interface WarmPoolOptions {
  entries: readonly WarmPoolEntry[];
  /** Working directory and HOME of idle children; a taken child moves to its instance's. */
  cwd: string;
  /** Idle children are recorded too, so a restarted agent kills those a crash left behind. */
  registry?: ChildRegistry;
  /** Where each child's stdio FIFOs get a folder (agent/child/child-stdio.ts). */
  stdioRoot?: string;
  /** OS users for children (agent/child/child-users.ts): each idle child runs as its own. */
  users?: ChildUsers;
  /** Delay before the first replacement after idle children died in a row; doubles, capped. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /**
   * The pool starts filling once this settles (default: at once). The agent
   * passes its first reconcile pass: after a restart, the instances coming
   * back should not wait for CPU behind children nobody asked for yet.
   */
  fillWhen?: Promise<unknown>;
  metrics?: WarmPoolMetrics;
  onDiagnostic?(message: string, context: Record<string, unknown>): void;
}

/** Counts each take of a pooled type: served by an idle child (hit) or not (miss). */
export interface WarmPoolMetrics {
  take(type: string, hit: boolean): void;
}

export interface WarmPoolStats {
  /** Idle children now, all types. */
  idle: number;
  /** Takes served by a warm child. */
  hits: number;
  /** Takes of a pooled type that found none idle (the instance spawned cold). */
  misses: number;
  /** Idle children that exited on their own. */
  died: number;
}

export interface WarmPool {
  /** An idle child of `type` started as `command args`, or undefined: the caller spawns cold. */
  take(type: string, command: string, args: readonly string[]): WarmChild | undefined;
  /** Idle children of one type (tests, stats). */
  idlePids(type: string): number[];
  stats(): WarmPoolStats;
  /** Kills the idle children and stops refilling; taken children are not the pool's. */
  close(): Promise<void>;
}

interface Idle {
  child: ChildProcess;
  stdio: ChildStdioStreams;
  uid: number | undefined;
  pid: number;
  /** Detaches the pool's listeners, handing the child over. */
  release(): void;
}

interface Slot {
  entry: WarmPoolEntry;
  idle: Idle[];
  /** Idle children that died in a row, for the refill backoff. */
  failures: number;
  timer: NodeJS.Timeout | undefined;
  /** A fill loop is running (spawning is asynchronous: the FIFOs are made first). */
  filling: boolean;
}

/** The fd the binding pipe has in the child (after stdin, stdout, stderr). */
const BINDING_FD = 3;
const CLOSE_WAIT_MS = 2_000;

export function createWarmPool(options: WarmPoolOptions): WarmPool {
  const backoffInitialMs = options.backoffInitialMs ?? 1_000;
  const backoffMaxMs = options.backoffMaxMs ?? 60_000;
  const slots = new Map<string, Slot>();
  for (const entry of options.entries)
    if (entry.size > 0)
      slots.set(entry.type, { entry, idle: [], failures: 0, timer: undefined, filling: false });
  let closed = false;
  /** False until options.fillWhen settles: no child is spawned before. */
  let filling = options.fillWhen === undefined;
  let hits = 0;
  let misses = 0;
  let died = 0;

  const stdioRoot = options.stdioRoot ?? DEFAULT_STDIO_ROOT;

  /** Removes a FIFO folder in the background; a failure is reported with its step (the next agent start prunes it). */
  const removeStdioDir = (dir: string, step: string): void => {
    removeChildStdio(dir).catch((error: unknown) =>
      options.onDiagnostic?.('a warm pool cleanup step failed', { step, dir, err: String(error) }),
    );
  };

  /** Spawns one idle child; false if spawning failed (its error handler retries). */
  const spawnIdle = async (slot: Slot): Promise<boolean> => {
    const { entry } = slot;
    // Others may pass through (o+x) to their own folders; nothing here is theirs to read.
    mkdirSync(options.cwd, { recursive: true, mode: 0o711 });
    const uid = options.users?.acquire();
    if (options.users !== undefined && uid === undefined) {
      throw new Error(`every child user id in ${options.users.range} is in use`);
    }
    const releaseUser = (): void => {
      if (uid !== undefined) options.users?.release(uid);
    };
    // The same FIFO stdio as a cold spawn, so that a taken child can outlive the agent.
    const stdio = await prepareChildStdio(stdioRoot).catch((error: unknown) => {
      releaseUser();
      throw error;
    });
    if (closed) {
      stdio.releaseChildFds();
      stdio.destroy();
      releaseUser();
      await removeChildStdio(stdio.dir);
      return false;
    }
    let child: ChildProcess;
    try {
      child = spawn(entry.command, [...entry.args], {
        cwd: options.cwd,
        env: { ...baseChildEnv(options.cwd), MINIMCP_BINDING_FD: String(BINDING_FD) },
        stdio: [...stdio.childFds, 'pipe'],
        // Its own process group, as a cold spawn: stop and killOrphans reach all of it.
        detached: true,
        ...(uid !== undefined ? { uid, gid: uid } : {}),
      });
    } catch (error) {
      stdio.destroy();
      removeStdioDir(stdio.dir, 'remove the stdio folder of a warm child that was not spawned');
      releaseUser();
      throw error;
    } finally {
      stdio.releaseChildFds();
    }
    /** The child is gone while the pool still owned it: its stdio and user go too. */
    const discardStdio = (): void => {
      stdio.destroy();
      removeStdioDir(stdio.dir, 'remove the stdio folder of an exited warm child');
      releaseUser();
    };
    // Pipe errors end in the child's exit, which is watched; an unhandled
    // stream 'error' would take the agent down instead.
    child.stdio[BINDING_FD]?.on('error', () => undefined);
    for (const stream of [stdio.stdin, stdio.stdout, stdio.stderr])
      stream.on('error', () => undefined);
    const pid = child.pid;
    if (pid === undefined) {
      child.once('error', (error: NodeJS.ErrnoException) => {
        discardStdio();
        onIdleDeath(`not spawned (${error.code})`);
      });
      return false;
    }
    options.registry?.add({
      pid,
      pgid: pid,
      startTicks: processStartTicks(pid),
      label: `warm-pool:${entry.type}`,
      command: entry.command,
      spawnedAt: Date.now(),
      ...(uid !== undefined ? { uid } : {}),
      stdioDir: stdio.dir,
    });
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      slot.idle = slot.idle.filter((idle) => idle.pid !== pid);
      killGroup(pid, 'SIGKILL');
      options.registry?.remove(pid);
      discardStdio();
      if (closed) return;
      onIdleDeath(signal !== null ? `killed by ${signal}` : `exited with code ${code}`);
    };
    const onError = (error: Error): void =>
      options.onDiagnostic?.('warm child process error', {
        type: entry.type,
        pid,
        err: error.message,
      });
    child.once('exit', onExit);
    child.on('error', onError);
    slot.idle.push({
      child,
      stdio,
      uid,
      pid,
      release() {
        child.off('exit', onExit);
        child.off('error', onError);
      },
    });
    return true;

    function onIdleDeath(reason: string): void {
      died += 1;
      slot.failures += 1;
      options.onDiagnostic?.('a warm child exited while idle', { type: entry.type, reason });
      schedule(slot);
    }
  };

  const fill = async (slot: Slot): Promise<void> => {
    slot.timer = undefined;
    if (slot.filling) return;
    slot.filling = true;
    let retry = false;
    try {
      while (!closed && slot.idle.length < slot.entry.size) {
        // Spawn itself failed: the error handler schedules a retry with backoff.
        if (!(await spawnIdle(slot))) return;
      }
    } catch (error) {
      // spawn() throws for some failures (EMFILE, EAGAIN): retry with backoff, never crash the agent.
      slot.failures += 1;
      retry = true;
      options.onDiagnostic?.('could not spawn a warm child', {
        type: slot.entry.type,
        err: String(error),
      });
    } finally {
      slot.filling = false;
    }
    if (retry) schedule(slot);
  };

  /** Refills now, or after a backoff while idle children keep dying. */
  const schedule = (slot: Slot): void => {
    if (closed || !filling || slot.timer !== undefined) return;
    const delayMs =
      slot.failures === 0 ? 0 : Math.min(backoffInitialMs * 2 ** (slot.failures - 1), backoffMaxMs);
    slot.timer = setTimeout(() => void fill(slot), delayMs);
    slot.timer.unref();
  };

  const startFilling = () => {
    filling = true;
    if (!closed) for (const slot of slots.values()) void fill(slot);
  };
  if (filling) startFilling();
  else void options.fillWhen!.then(startFilling, startFilling);

  return {
    take(type, command, args) {
      const slot = slots.get(type);
      if (closed || slot === undefined) return undefined;
      const { entry } = slot;
      // The type's row may have changed since the pool started: only an identical command line.
      if (entry.command !== command || entry.args.join('\0') !== args.join('\0')) return undefined;
      // The oldest first: the most likely to have finished loading.
      const idle = slot.idle.find(
        (candidate) => candidate.child.exitCode === null && candidate.child.signalCode === null,
      );
      if (idle === undefined) {
        misses += 1;
        options.metrics?.take(type, false);
        schedule(slot);
        return undefined;
      }
      slot.idle = slot.idle.filter((candidate) => candidate !== idle);
      idle.release();
      hits += 1;
      options.metrics?.take(type, true);
      slot.failures = 0;
      schedule(slot);
      const binding = idle.child.stdio[BINDING_FD] as Writable;
      return {
        child: idle.child,
        stdio: idle.stdio,
        ...(idle.uid !== undefined ? { uid: idle.uid } : {}),
        bind({ env, cwd }) {
          binding.end(`${JSON.stringify({ env, cwd })}\n`);
        },
      };
    },
    idlePids(type) {
      return (slots.get(type)?.idle ?? []).map((idle) => idle.pid);
    },
    stats() {
      let idle = 0;
      for (const slot of slots.values()) idle += slot.idle.length;
      return { idle, hits, misses, died };
    },
    async close() {
      closed = true;
      const exits: Promise<unknown>[] = [];
      for (const slot of slots.values()) {
        clearTimeout(slot.timer);
        slot.timer = undefined;
        for (const idle of slot.idle) {
          exits.push(
            new Promise((resolve) => {
              if (idle.child.exitCode !== null || idle.child.signalCode !== null)
                resolve(undefined);
              else idle.child.once('exit', resolve);
            }),
          );
          // Idle children hold nothing to flush: no grace period.
          killGroup(idle.pid, 'SIGKILL');
        }
      }
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.all(exits),
          new Promise((resolve) => {
            timer = setTimeout(resolve, CLOSE_WAIT_MS);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
