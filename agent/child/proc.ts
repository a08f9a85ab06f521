// What the agent reads about processes from /proc (Linux; no dependency), and
// how it signals a process group: the supervisor samples its children here,
// and the children records are checked against it after an agent restart.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';

/** USER_HZ: 100 on every Linux architecture Node supports. */
export const CLOCK_TICKS = 100;
let cachedPageSize: number | undefined;

/** Sends `signal` to a whole process group; a group already gone is fine. */
export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** The kernel's page size, from the auxiliary vector (AT_PAGESZ); 4096 if unreadable. */
export function pageSize(): number {
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

export interface ProcStat {
  state: string;
  ppid: number;
  pgid: number;
  /** utime + stime, in CLOCK_TICKS. */
  cpuTicks: number;
  /** When the process started, in clock ticks since boot: tells it from a later one reusing the pid. */
  startTicks: number;
}

/** Fields of /proc/<pid>/stat; the command name may hold spaces, so split after its `)`. */
export function readProcStat(pid: number): ProcStat | undefined {
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
    ppid: Number(fields[1]),
    pgid: Number(fields[2]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    startTicks: Number(fields[19]),
  };
}

/** The kernel start time of `pid` (for a children record), if it is alive. */
export function processStartTicks(pid: number): number | undefined {
  return readProcStat(pid)?.startTicks;
}

export function readResidentPages(pid: number): number | undefined {
  try {
    return Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Every process id now in /proc. */
export function processIds(): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => Number.isInteger(pid));
}

/** Live (not zombie) processes and their stat, from one pass over /proc. */
export function liveProcesses(): Map<number, ProcStat> {
  const live = new Map<number, ProcStat>();
  for (const pid of processIds()) {
    const stat = readProcStat(pid);
    if (stat !== undefined && stat.state !== 'Z') live.set(pid, stat);
  }
  return live;
}

/**
 * Whether `pid` still runs (a zombie waiting to be reaped does not) and, given
 * its start time, is still the same process rather than a later one with its pid.
 */
export function isRunning(pid: number, startTicks?: number): boolean {
  const stat = readProcStat(pid);
  if (stat === undefined || stat.state === 'Z') return false;
  return startTicks === undefined || stat.startTicks === startTicks;
}

/** The user a process runs as (the owner of its /proc folder: its effective uid). */
function ownerOf(pid: number): number | undefined {
  try {
    return statSync(`/proc/${pid}`).uid;
  } catch {
    return undefined;
  }
}

/**
 * SIGKILLs every process running as `uid`, a few passes over /proc in case
 * one forks while the others die. Never for root's or the agent's own uid.
 */
export function killProcessesOf(uid: number): void {
  if (uid === 0 || uid === process.getuid?.()) return;
  for (let pass = 0; pass < 3; pass++) {
    let found = false;
    for (const pid of processIds()) {
      if (ownerOf(pid) !== uid) continue;
      found = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    if (!found) return;
  }
}

/** Processes with an open file under one of `dirs` (from /proc/<pid>/fd), but this one. */
export function processesWithFilesUnder(dirs: readonly string[]): number[] {
  const prefixes = dirs.map((dir) => `${dir}/`);
  const holders: number[] = [];
  for (const pid of processIds()) {
    if (pid === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (prefixes.some((prefix) => target.startsWith(prefix))) {
        holders.push(pid);
        break;
      }
    }
  }
  return holders;
}

/** Live (not zombie) processes by process group, from one pass over /proc. */
export function liveProcessGroups(): Map<number, number[]> {
  const groups = new Map<number, number[]>();
  for (const [pid, stat] of liveProcesses()) {
    const members = groups.get(stat.pgid);
    if (members === undefined) groups.set(stat.pgid, [pid]);
    else members.push(pid);
  }
  return groups;
}
