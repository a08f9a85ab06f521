// Enforces per-instance resource limits by sampling (portable: no cgroups
// needed): the type's resource_limits ({"memory": "512m", "cpu": "0.5"}),
// capped by the process.max_memory_mb / process.max_cpu_percent settings. A
// child over its memory limit, or over its CPU limit for several samples in a
// row, is killed and its instance goes to `error` with a message that says why.
import type { JsonObject } from '../../core/domain.js';
import type { Settings } from '../../core/db/settings.js';

export interface ResourceLimits {
  memoryBytes: number;
  /** 100 = one core. */
  cpuPercent: number;
}

/** "512m", "1g", "256Mi", "1048576" (bytes) → bytes; undefined when unparseable. */
export function parseMemory(value: unknown): number | undefined {
  if (typeof value === 'number' && value > 0) return value;
  if (typeof value !== 'string') return undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$/i.exec(value);
  if (!match) return undefined;
  const scale =
    { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[match[2]!.toLowerCase()] ?? 1;
  return Math.round(Number(match[1]) * scale);
}

/** "0.5" cores, 0.5, or "50%" → percent of one core. */
export function parseCpu(value: unknown): number | undefined {
  if (typeof value === 'number' && value > 0) return value * 100;
  if (typeof value !== 'string') return undefined;
  const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
  if (percent) return Number(percent[1]);
  const cores = Number(value);
  return Number.isFinite(cores) && cores > 0 ? cores * 100 : undefined;
}

export function limitsFor(typeLimits: JsonObject | null, settings: Settings): ResourceLimits {
  const settingsMemory = settings['process.max_memory_mb'] * 1024 * 1024;
  const settingsCpu = settings['process.max_cpu_percent'];
  const memory = parseMemory(typeLimits?.memory);
  const cpu = parseCpu(typeLimits?.cpu);
  return {
    memoryBytes: memory ? Math.min(memory, settingsMemory) : settingsMemory,
    cpuPercent: cpu ? Math.min(cpu, settingsCpu) : settingsCpu,
  };
}

export interface Sample {
  rssBytes: number;
  cpuPercent: number;
}

export type Verdict = { ok: true } | { ok: false; limit: 'memory' | 'cpu'; reason: string };

/** Consecutive over-limit CPU samples before a kill: short bursts are fine. */
export const CPU_STRIKES = 3;

/** Judges one instance's samples over time. */
export function createResourceJudge(limits: () => ResourceLimits) {
  let cpuStrikes = 0;
  return (sample: Sample): Verdict => {
    const { memoryBytes, cpuPercent } = limits();
    if (sample.rssBytes > memoryBytes) {
      return {
        ok: false,
        limit: 'memory',
        reason: `killed: memory ${Math.round(sample.rssBytes / 1024 / 1024)} MB is over the limit of ${Math.round(memoryBytes / 1024 / 1024)} MB`,
      };
    }
    cpuStrikes = sample.cpuPercent > cpuPercent ? cpuStrikes + 1 : 0;
    if (cpuStrikes >= CPU_STRIKES) {
      return {
        ok: false,
        limit: 'cpu',
        reason: `killed: CPU ${Math.round(sample.cpuPercent)}% stayed over the limit of ${Math.round(cpuPercent)}% for ${CPU_STRIKES} samples`,
      };
    }
    return { ok: true };
  };
}
