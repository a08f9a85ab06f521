// The agent's record of the process groups it runs (`<state>/children/`), so
// that the next agent (after a crash or a SIGKILL) knows them. A child that had answered
// `initialize` and whose stdio runs through FIFOs (agent/child/child-stdio.ts) can be
// re-attached by the next agent (agent/child/survivors.ts); every other one is killed.
import { mkdirSync, rmSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { replaceFileSync } from '../../core/replace-file.js';
import { isRunning, killGroup, liveProcessGroups, readProcStat } from './proc.js';

/** What a child said about itself in its `initialize` answer. */
export const ChildInitializeResult = z.looseObject({
  protocolVersion: z.string(),
  capabilities: z.record(z.string(), z.unknown()),
  serverInfo: z.looseObject({ name: z.string(), version: z.string() }),
  instructions: z.string().optional(),
});
export type ChildInitializeResult = z.infer<typeof ChildInitializeResult>;

const ChildRecordSchema = z.object({
  pid: z.number().int().positive(),
  pgid: z.number().int().positive(),
  /** Kernel start time of the process, to tell it from a later one reusing the pid. */
  startTicks: z.number().optional(),
  /** The instance id, or `warm-pool:<type>` for an idle pre-spawned child. */
  label: z.string(),
  command: z.string(),
  spawnedAt: z.number(),
  /** The OS user it runs as, when children get users of their own (agent/child/child-users.ts). */
  uid: z.number().int().nonnegative().optional(),
  /** The folder of the child's stdio FIFOs, through which a new agent re-attaches. */
  stdioDir: z.string().optional(),
  /** Digest of what the child was started with (agent/child/survivors.ts `launchFingerprint`). */
  fingerprint: z.string().optional(),
  /** Its `initialize` answer, once given: a new agent answers sessions from it. */
  initializeResult: ChildInitializeResult.optional(),
});
export type ChildRecord = z.infer<typeof ChildRecordSchema>;

export interface ChildRegistry {
  /** Records a child, or replaces the record of the same pid. */
  add(record: ChildRecord): void;
  remove(pid: number): void;
  /** SIGKILLs every recorded group now (for a `process.on('exit')` hook). */
  killAllSync(): void;
}

/** One file per child, `<pid>.json`: a change rewrites one small file, not the whole set. */
const CHILDREN_DIR = 'children';

const childrenDir = (stateDir: string): string => path.join(stateDir, CHILDREN_DIR);

/**
 * The registry in `<stateDir>/children/`, one `<pid>.json` per child, each
 * written atomically (temp file + rename) so that a crash at any moment leaves
 * readable records. `kept` are children of a previous agent that this one
 * takes over (their files are already there).
 */
export function createChildRegistry(
  stateDir: string,
  kept: readonly ChildRecord[] = [],
): ChildRegistry {
  const dir = childrenDir(stateDir);
  // Only the agent's: records name processes, FIFO folders and launch fingerprints.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const records = new Map<number, ChildRecord>(kept.map((record) => [record.pid, record]));
  return {
    add(record) {
      records.set(record.pid, record);
      replaceFileSync(path.join(dir, `${record.pid}.json`), JSON.stringify(record));
    },
    remove(pid) {
      if (records.delete(pid)) rmSync(path.join(dir, `${pid}.json`), { force: true });
    },
    killAllSync() {
      for (const record of records.values()) killGroup(record.pgid, 'SIGKILL');
    },
  };
}

/** The records in `<stateDir>/children/`; a torn or foreign file is removed and skipped. */
export async function readChildRecords(stateDir: string): Promise<ChildRecord[]> {
  const dir = childrenDir(stateDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const records: ChildRecord[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    if (!name.endsWith('.json')) {
      await rm(file, { force: true }); // a temp file a crash left
      continue;
    }
    try {
      records.push(ChildRecordSchema.parse(JSON.parse(await readFile(file, 'utf8'))));
    } catch {
      // Nothing in it can be trusted to be ours.
      await rm(file, { force: true });
    }
  }
  return records;
}

/**
 * Whether the process group a record names is still the recorded child's: its
 * leader is the same process (same start time), or gone — the members left can
 * then only be the child's, as the kernel hands out no pid that still names a
 * live process group. A leader pid now naming another process is not ours.
 */
export function isRecordedGroup(record: ChildRecord): boolean {
  const leader = readProcStat(record.pid);
  return (
    leader === undefined ||
    record.startTicks === undefined ||
    leader.startTicks === record.startTicks
  );
}

/** SIGKILLs the recorded group, unless its pid now names someone else's. */
export function killRecordedGroup(record: ChildRecord): void {
  if (isRecordedGroup(record)) killGroup(record.pgid, 'SIGKILL');
}

export interface ChildSweep {
  /** Groups killed (once their members are gone, or after the wait). */
  killed: ChildRecord[];
  /** Children still running as recorded that `keep` chose to leave alone. */
  kept: ChildRecord[];
}

/**
 * Goes through the children a previous agent left in `<stateDir>/children/`:
 * those `keep` accepts (leader alive, same start time) are left running, every
 * other recorded group is SIGKILLed. A group whose leader's pid now belongs to
 * a different process (another start time) is not ours and is left alone. Only
 * the kept ones' records remain; the caller's new registry takes them over.
 */
export async function sweepChildren(
  stateDir: string,
  options: { keep?: (record: ChildRecord) => boolean; waitMs?: number } = {},
): Promise<ChildSweep> {
  const records = await readChildRecords(stateDir);
  const groups = liveProcessGroups();
  const killed: ChildRecord[] = [];
  const kept: ChildRecord[] = [];
  const victims: number[] = [];
  for (const record of records) {
    const members = groups.get(record.pgid);
    if (members === undefined) continue; // the whole group is gone already
    if (!isRecordedGroup(record)) continue;
    if (isRunning(record.pid) && options.keep?.(record)) {
      kept.push(record);
      continue;
    }
    killGroup(record.pgid, 'SIGKILL');
    killed.push(record);
    victims.push(...members);
  }
  const deadline = Date.now() + (options.waitMs ?? 5_000);
  while (victims.some((pid) => isRunning(pid)) && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 20));
  // Every record but the kept ones is done with (killed, or its group gone already).
  const keptPids = new Set(kept.map((record) => record.pid));
  await Promise.all(
    records
      .filter((record) => !keptPids.has(record.pid))
      .flatMap((record) => [
        rm(path.join(childrenDir(stateDir), `${record.pid}.json`), { force: true }),
        record.stdioDir ? rm(record.stdioDir, { recursive: true, force: true }) : undefined,
      ]),
  );
  return { killed, kept };
}

/** Kills every group a previous agent recorded; resolves with the records killed. */
export async function killOrphans(stateDir: string, waitMs = 5_000): Promise<ChildRecord[]> {
  return (await sweepChildren(stateDir, { waitMs })).killed;
}
