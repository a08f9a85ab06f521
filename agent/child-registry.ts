// children.json: the agent's record of the process groups it runs, so that the
// next agent (after a crash or a SIGKILL) knows them. A child that had answered
// `initialize` and whose stdio runs through FIFOs (agent/child-stdio.ts) can be
// re-attached by the next agent (agent/survivors.ts); every other one is killed.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
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
  /** The folder of the child's stdio FIFOs, through which a new agent re-attaches. */
  stdioDir: z.string().optional(),
  /** Digest of what the child was started with (agent/survivors.ts `launchFingerprint`). */
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

const CHILDREN_FILE = 'children.json';

/**
 * The registry of `<stateDir>/children.json`, rewritten atomically (temp file +
 * rename) on every change so that a crash at any moment leaves a readable file.
 * `kept` are children of a previous agent that this one takes over.
 */
export function createChildRegistry(
  stateDir: string,
  kept: readonly ChildRecord[] = [],
): ChildRegistry {
  mkdirSync(stateDir, { recursive: true });
  const file = path.join(stateDir, CHILDREN_FILE);
  const records = new Map<number, ChildRecord>(kept.map((record) => [record.pid, record]));
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

export interface ChildSweep {
  /** Groups killed (once their members are gone, or after the wait). */
  killed: ChildRecord[];
  /** Children still running as recorded that `keep` chose to leave alone. */
  kept: ChildRecord[];
}

/**
 * Goes through the children a previous agent left in `<stateDir>/children.json`:
 * those `keep` accepts (leader alive, same start time) are left running, every
 * other recorded group is SIGKILLed. A group whose leader's pid now belongs to
 * a different process (another start time) is not ours and is left alone. The
 * file is removed; the caller records the kept ones in its new registry.
 */
export async function sweepChildren(
  stateDir: string,
  options: { keep?: (record: ChildRecord) => boolean; waitMs?: number } = {},
): Promise<ChildSweep> {
  const file = path.join(stateDir, CHILDREN_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { killed: [], kept: [] };
    throw error;
  }
  let records: ChildRecord[];
  try {
    records = z.array(ChildRecordSchema).parse(JSON.parse(text));
  } catch {
    // A torn or foreign file: nothing in it can be trusted to be ours.
    await rm(file, { force: true });
    return { killed: [], kept: [] };
  }
  const groups = liveProcessGroups();
  const killed: ChildRecord[] = [];
  const kept: ChildRecord[] = [];
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
    if (leader !== undefined && leader.state !== 'Z' && options.keep?.(record)) {
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
  await rm(file, { force: true });
  await Promise.all(
    killed.map((record) =>
      record.stdioDir ? rm(record.stdioDir, { recursive: true, force: true }) : undefined,
    ),
  );
  return { killed, kept };
}

/** Kills every group a previous agent recorded; resolves with the records killed. */
export async function killOrphans(stateDir: string, waitMs = 5_000): Promise<ChildRecord[]> {
  return (await sweepChildren(stateDir, { waitMs })).killed;
}
