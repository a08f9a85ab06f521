// A child's stdin, stdout and stderr as named pipes (FIFOs) in a folder of
// their own, instead of the socket pairs `spawn` would make. The child gets
// each FIFO opened read-write, so it holds both ends itself: when the agent
// dies, the child sees no EOF on stdin and no EPIPE on stdout; it waits
// (its writes block once a pipe's 64 KiB fill). A new agent opens the same
// FIFOs again and carries on where the old one stopped (agent/child/survivors.ts),
// as containerd's shims and Docker's live-restore do.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { killGroup, processesWithFilesUnder, readProcStat } from './proc.js';

const run = promisify(execFile);
const NAMES = ['stdin', 'stdout', 'stderr'] as const;

/** Where FIFO folders go when the agent names no place (tests, direct use). */
export const DEFAULT_STDIO_ROOT = path.join(os.tmpdir(), 'minimcp-stdio');

/** The agent's ends of a child's stdio. */
export interface ChildStdioStreams {
  readonly dir: string;
  /** Writes to the child's stdin. */
  readonly stdin: Socket;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /** Closes the agent's ends (the FIFOs stay). */
  destroy(): void;
}

/** FIFOs made for a child that is about to be spawned. */
export interface PreparedChildStdio extends ChildStdioStreams {
  /** For `spawn`'s `stdio` option: each FIFO opened read-write. */
  readonly childFds: readonly [number, number, number];
  /** Closes the agent's copies of `childFds`; call right after spawning, or EOF never comes. */
  releaseChildFds(): void;
}

/**
 * FIFO folders made ahead, a batch per `mkfifo` run. Node has no mkfifo(3), so
 * each batch is one process; one process per child would cost the agent
 * memory it keeps (measured: 100 short spawns, +6 MB RSS).
 */
const SPARE_BATCH = 16;
const spares = new Map<string, { dirs: string[]; making: Promise<void> | undefined }>();

async function makeSpares(root: string, into: string[]): Promise<void> {
  await mkdir(root, { recursive: true, mode: 0o700 });
  const dirs = Array.from({ length: SPARE_BATCH }, () => path.join(root, randomUUID()));
  try {
    await Promise.all(dirs.map((dir) => mkdir(dir, { mode: 0o700 })));
    await run('mkfifo', [
      '-m',
      '600',
      ...dirs.flatMap((dir) => NAMES.map((name) => path.join(dir, name))),
    ]);
  } catch (error) {
    // No mkfifo, a full disk: leave no half-made folders behind for every retry.
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    throw error;
  }
  into.push(...dirs);
}

/** A fresh FIFO folder under `root`, from the spares (made a batch at a time). */
async function takeFifoDir(root: string): Promise<string> {
  let supply = spares.get(root);
  if (supply === undefined) spares.set(root, (supply = { dirs: [], making: undefined }));
  for (;;) {
    const dir = supply.dirs.pop();
    if (dir !== undefined) return dir;
    const current = supply;
    current.making ??= makeSpares(root, current.dirs).finally(() => (current.making = undefined));
    await current.making;
  }
}

/**
 * Takes a FIFO folder under `root` and opens its three FIFOs: the child's
 * ends (read-write) and the agent's (stdin write-only, stdout and stderr read-only).
 */
export async function prepareChildStdio(root: string): Promise<PreparedChildStdio> {
  for (;;) {
    const dir = await takeFifoDir(root);
    try {
      return openPrepared(dir);
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      // A spare removed underneath us (a temp-dir cleaner): take the next one.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
}

function openPrepared(dir: string): PreparedChildStdio {
  const childFds: number[] = [];
  try {
    for (const name of NAMES) childFds.push(openSync(path.join(dir, name), constants.O_RDWR));
    const streams = attachChildStdio(dir);
    let released = false;
    return {
      ...streams,
      childFds: childFds as [number, number, number],
      releaseChildFds() {
        if (released) return;
        released = true;
        for (const fd of childFds) closeSync(fd);
      },
    };
  } catch (error) {
    for (const fd of childFds) closeSync(fd);
    throw error;
  }
}

/**
 * Opens the agent's ends of the FIFOs in `dir`. Throws ENXIO when nobody holds
 * the child's stdin (the child is gone) and ENOENT when the FIFOs are.
 */
export function attachChildStdio(dir: string): ChildStdioStreams {
  const fds: number[] = [];
  try {
    // Non-blocking: opening a FIFO for writing fails at once without a reader
    // instead of waiting for one; libuv wants non-blocking descriptors anyway.
    fds.push(openSync(path.join(dir, 'stdin'), constants.O_WRONLY | constants.O_NONBLOCK));
    fds.push(openSync(path.join(dir, 'stdout'), constants.O_RDONLY | constants.O_NONBLOCK));
    fds.push(openSync(path.join(dir, 'stderr'), constants.O_RDONLY | constants.O_NONBLOCK));
  } catch (error) {
    for (const fd of fds) closeSync(fd);
    throw error;
  }
  const stdin = new Socket({ fd: fds[0]!, readable: false, writable: true });
  const stdout = new Socket({ fd: fds[1]!, readable: true, writable: false });
  const stderr = new Socket({ fd: fds[2]!, readable: true, writable: false });
  return {
    dir,
    stdin,
    stdout,
    stderr,
    destroy() {
      stdin.destroy();
      stdout.destroy();
      stderr.destroy();
    },
  };
}

/** Removes a child's FIFO folder. */
export async function removeChildStdio(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Removes every FIFO folder under `root` but `keep` (at agent start: the spares
 * and the folders of children a previous agent left). A process still holding
 * one of those FIFOs is a child whose record was lost (unreadable, or from an
 * older agent): its process group is killed first.
 */
export async function pruneChildStdio(root: string, keep: ReadonlySet<string>): Promise<void> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const pruned = new Set(
    names.map((name) => path.join(root, name)).filter((dir) => !keep.has(dir)),
  );
  const supply = spares.get(root);
  if (supply !== undefined) supply.dirs = supply.dirs.filter((dir) => !pruned.has(dir));
  if (pruned.size > 0) {
    const ownGroup = readProcStat(process.pid)?.pgid;
    for (const pid of processesWithFilesUnder([...pruned])) {
      const group = readProcStat(pid)?.pgid;
      if (group !== undefined && group !== ownGroup) killGroup(group, 'SIGKILL');
    }
  }
  await Promise.all([...pruned].map((dir) => rm(dir, { recursive: true, force: true })));
}
