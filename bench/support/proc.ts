// Process figures from /proc (Linux): resident memory, CPU time, descendants.
// The benchmarks read the agent's own numbers here, from outside it, so that
// measuring does not change what is measured.
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS, isRunning, liveProcesses, readProcStat } from '../../agent/child/proc.js';

export interface ProcMemory {
  /** VmRSS: resident set, bytes. */
  rss: number;
  /** RssAnon: heap, stacks, JIT code — what the process itself allocated. */
  rssAnon: number;
  /** RssFile: mapped files (the node binary's pages, shared between processes). */
  rssFile: number;
  /** VmHWM: the peak resident set so far. */
  peakRss: number;
}

export function readMemory(pid: number): ProcMemory | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) * 1024 : 0;
  };
  return { rss: kb('VmRSS'), rssAnon: kb('RssAnon'), rssFile: kb('RssFile'), peakRss: kb('VmHWM') };
}

/** CPU time (user + system) the process has used, in seconds; undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  const stat = readProcStat(pid);
  return stat === undefined ? undefined : stat.cpuTicks / CLOCK_TICKS;
}

/** Live descendants of `pid` (children, grandchildren...), from one pass over /proc. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const [child, stat] of liveProcesses()) {
    const siblings = children.get(stat.ppid);
    if (siblings) siblings.push(child);
    else children.set(stat.ppid, [child]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

export interface CpuWindow {
  /** CPU use over the window; 100 = one core busy. */
  percent: number;
  cpuSeconds: number;
  wallSeconds: number;
}

/** Starts a CPU measurement of `pids`; `end()` reports their use since. */
export function startCpuWindow(pids: readonly number[]): { end(): CpuWindow } {
  const startedAt = performance.now();
  const before = new Map(pids.map((pid) => [pid, cpuSeconds(pid) ?? 0]));
  return {
    end() {
      const wallSeconds = (performance.now() - startedAt) / 1000;
      let used = 0;
      for (const [pid, start] of before) {
        const now = cpuSeconds(pid);
        if (now !== undefined) used += now - start;
      }
      return { percent: (used / wallSeconds) * 100, cpuSeconds: used, wallSeconds };
    },
  };
}

export function isAlive(pid: number): boolean {
  return isRunning(pid);
}

export const MB = 1024 * 1024;
