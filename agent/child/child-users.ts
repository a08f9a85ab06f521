// OS users for MCP server children: with MINIMCP_CHILD_UIDS set, every child
// (cold, warm or re-attached) runs as a user id of its own, with the same
// number as its group and no supplementary groups. A child then cannot read
// another child's environment (its API key) or the agent's (database
// password), cannot signal or ptrace them, and cannot open their stdio FIFOs;
// a firewall rule on the uid range keeps it from the instance metadata service
// (the node's AWS role). The ids need no /etc/passwd entry. Before an id goes
// to another instance, whatever still runs as it is killed and what it left in
// the shared temp folders removed.
import { lstatSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { killProcessesOf } from './proc.js';

/** World-writable folders where a child may leave files for the next holder of its uid. */
const SHARED_TEMP_DIRS = ['/tmp', '/var/tmp', '/dev/shm'];

/** Removes what `uid` left at the top of the shared temp folders. */
function removeTempFilesOf(uid: number): void {
  for (const dir of SHARED_TEMP_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const entry = path.join(dir, name);
      try {
        if (lstatSync(entry).uid === uid) rmSync(entry, { recursive: true, force: true });
      } catch {
        // Gone meanwhile, or not ours to remove.
      }
    }
  }
}

export interface ChildUsers {
  /** A user id no live child has; undefined when all are in use. */
  acquire(): number | undefined;
  /** Marks an id as taken (a surviving child of a previous agent). */
  claim(uid: number): void;
  /** Kills every process left running as `uid` (a child's escaped descendants). */
  reclaim(uid: number): void;
  /** Reclaims `uid` (its processes and its files in the shared temp folders) and frees it. */
  release(uid: number): void;
  readonly inUse: number;
  /** START-END, for messages. */
  readonly range: string;
}

export function createChildUsers(
  range: { start: number; end: number },
  taken: Iterable<number> = [],
): ChildUsers {
  const used = new Set<number>();
  let next = range.start;
  const inRange = (uid: number) => uid >= range.start && uid <= range.end;
  for (const uid of taken) if (inRange(uid)) used.add(uid);
  const size = range.end - range.start + 1;
  return {
    acquire() {
      if (used.size >= size) return undefined;
      // Round robin: an id just released is not handed out again at once.
      while (used.has(next)) next = next === range.end ? range.start : next + 1;
      const uid = next;
      used.add(uid);
      next = next === range.end ? range.start : next + 1;
      return uid;
    },
    claim(uid) {
      if (inRange(uid)) used.add(uid);
    },
    reclaim(uid) {
      if (inRange(uid)) killProcessesOf(uid);
    },
    release(uid) {
      if (!inRange(uid)) return;
      killProcessesOf(uid);
      removeTempFilesOf(uid);
      used.delete(uid);
    },
    get inUse() {
      return used.size;
    },
    range: `${range.start}-${range.end}`,
  };
}
