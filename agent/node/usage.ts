// Usage of each instance (gateway counters, CPU and memory of the child)
// written in one batched statement every few seconds, node totals for the
// heartbeat, and the running instances' health checks (health-probe.ts). No
// database write per request: the gateway only counts.
import type { DatabasePool } from 'slonik';
import type { AgentConfig } from '../../core/config.js';
import type { NodeRow } from '../../core/db/nodes.js';
import { recordInstanceUsage, type InstanceUsage } from '../../core/db/instances.js';
import { getSettings, type Settings } from '../../core/db/settings.js';
import type { JsonObject } from '../../core/domain.js';
import { probeAndRecord, probeHost, type ProbeTarget } from './health-probe.js';
import { followPortRange } from './node-registration.js';
import type { Reconciler } from './reconciler.js';
import { createResourceJudge, limitsFor, type Sample, type Verdict } from './resource-guard.js';

/** Settings are re-read this often by default (limits can change while the agent runs). */
const SETTINGS_TTL_MS = 30_000;

/** Counts children killed over a resource limit, by type name and the limit crossed. */
export interface UsageMetrics {
  childKilled(type: string, limit: 'memory' | 'cpu'): void;
}

export interface UsageSampler {
  /** Samples every running instance and writes the batch. */
  flush(): Promise<void>;
  /** Node totals from the last sample. */
  nodeTotals(): JsonObject;
  stop(): void;
}

/** The sampler's options from the agent's configuration: intervals, port-range following, health probe. */
export function usageOptions(config: AgentConfig, pool: DatabasePool, node: NodeRow) {
  const followRange = followPortRange(pool, config, node);
  return {
    intervalMs: config.MINIMCP_USAGE_SECONDS * 1000,
    settingsRefreshMs: config.MINIMCP_SETTINGS_REFRESH_SECONDS * 1000,
    ...(followRange ? { onSettings: followRange } : {}),
    health: { nodeId: node.id, bindHost: config.MINIMCP_BIND_HOST },
  };
}

export function startUsageSampler(options: {
  pool: DatabasePool;
  reconciler: Reconciler;
  intervalMs: number;
  /** How old the settings may get before a re-read (MINIMCP_SETTINGS_REFRESH_SECONDS). */
  settingsRefreshMs?: number;
  /** Told each fresh read of the settings (the port pool follows them, node-registration.ts). */
  onSettings?: (settings: Settings) => Promise<void>;
  /** With these, each pass also probes the running instances' health (health-probe.ts). */
  health?: { nodeId: string; bindHost: string };
  onError?: (error: unknown) => void;
  /** Instances the health probe found with no live child or no answering port. */
  onUnhealthy?: (targets: readonly ProbeTarget[]) => void;
  metrics?: UsageMetrics;
}): UsageSampler {
  const lastAccessWritten = new Map<string, number>();
  const judges = new Map<string, (sample: Sample) => Verdict>();
  let totals: JsonObject = {};
  let settings: Settings | undefined;
  let settingsReadAt = 0;

  const currentSettings = async (): Promise<Settings | undefined> => {
    if (!settings || Date.now() - settingsReadAt > (options.settingsRefreshMs ?? SETTINGS_TTL_MS)) {
      try {
        settings = await getSettings(options.pool);
        settingsReadAt = Date.now();
        await options.onSettings?.(settings);
      } catch (error) {
        options.onError?.(error); // keep the last known limits
      }
    }
    return settings;
  };

  const flush = async () => {
    const limits = await currentSettings();
    const usage: InstanceUsage[] = [];
    const live = new Set<string>();
    let cpu = 0;
    let rss = 0;
    let requests = 0;
    let running = 0;
    for (const runtime of options.reconciler.list()) {
      if (runtime.state !== 'running') continue;
      running++;
      live.add(runtime.id);
      const counters = runtime.gateway()?.counters();
      const sample = runtime.supervisor()?.sample();
      if (sample && limits) {
        let judge = judges.get(runtime.id);
        if (!judge) {
          const spec = runtime.spec;
          judge = createResourceJudge(() => limitsFor(spec.resource_limits, settings ?? limits));
          judges.set(runtime.id, judge);
        }
        const verdict = judge(sample);
        if (!verdict.ok) {
          options.metrics?.childKilled(runtime.spec.type_name, verdict.limit);
          void runtime.kill('RESOURCE_LIMIT', verdict.reason);
        }
      }
      cpu += sample?.cpuPercent ?? 0;
      rss += sample?.rssBytes ?? 0;
      requests += counters?.requests ?? 0;
      const stats: JsonObject = {
        sampled_at: new Date().toISOString(),
        pid: sample?.pid ?? null,
        cpu_percent: sample ? Math.round(sample.cpuPercent * 10) / 10 : null,
        rss_bytes: sample?.rssBytes ?? null,
        uptime_seconds: sample ? Math.round(sample.uptimeMs / 1000) : null,
        restarts: runtime.supervisor()?.restarts ?? 0,
        requests: counters?.requests ?? 0,
        errors: counters?.errors ?? 0,
        bytes_in: counters?.bytesIn ?? 0,
        bytes_out: counters?.bytesOut ?? 0,
        sessions: counters?.sessions ?? 0,
      };
      const entry: InstanceUsage = { instanceId: runtime.id, stats };
      const lastAccess = counters?.lastAccessAt;
      if (lastAccess !== undefined && lastAccess !== lastAccessWritten.get(runtime.id)) {
        entry.lastAccessed = new Date(lastAccess);
        lastAccessWritten.set(runtime.id, lastAccess);
      }
      usage.push(entry);
    }
    for (const id of judges.keys()) if (!live.has(id)) judges.delete(id);
    totals = {
      instances_running: running,
      children_cpu_percent: Math.round(cpu * 10) / 10,
      children_rss_bytes: rss,
      agent_rss_bytes: process.memoryUsage().rss,
      requests_total: requests,
    };
    try {
      await recordInstanceUsage(options.pool, usage);
    } catch (error) {
      options.onError?.(error);
    }
    await probe(live);
  };

  const probe = async (live: ReadonlySet<string>) => {
    if (!options.health) return;
    const targets = options.reconciler
      .list()
      .filter((runtime) => live.has(runtime.id) && runtime.state === 'running')
      .map((runtime) => ({
        instanceId: runtime.id,
        port: runtime.port,
        pid: runtime.supervisor()?.pid,
      }));
    try {
      const { nodeId, bindHost } = options.health;
      const host = probeHost(bindHost);
      const unhealthy = await probeAndRecord({ pool: options.pool, nodeId, host, targets });
      if (unhealthy.length > 0) options.onUnhealthy?.(unhealthy);
    } catch (error) {
      options.onError?.(error);
    }
  };

  const timer = setInterval(() => void flush(), options.intervalMs);
  timer.unref();
  return { flush, nodeTotals: () => totals, stop: () => clearInterval(timer) };
}
