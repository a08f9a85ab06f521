// The health probe of this node's running instances, on the usage tick: a
// runtime is healthy when its child is alive (in /proc, not a zombie) and its
// port accepts a TCP connection. The healthy ones get
// port_allocations.last_health_check, in one statement per pass.
import net from 'node:net';
import type { DatabasePool } from 'slonik';
import { recordHealthChecks } from '../../core/db/ports.js';
import { isRunning } from '../child/proc.js';

export interface ProbeTarget {
  instanceId: string;
  port: number;
  /** The child's pid; undefined when it has none (between restarts). */
  pid: number | undefined;
}

/** A connect slower than this counts as no answer. */
const CONNECT_TIMEOUT_MS = 1_000;

/** Where to dial an instance port: a wildcard bind answers on loopback. */
export function probeHost(bindHost: string): string {
  if (bindHost === '0.0.0.0') return '127.0.0.1';
  if (bindHost === '::' || bindHost === '[::]') return '::1';
  return bindHost;
}

function portAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (answered: boolean) => {
      socket.destroy();
      resolve(answered);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export async function isHealthy(
  host: string,
  target: ProbeTarget,
  timeoutMs = CONNECT_TIMEOUT_MS,
): Promise<boolean> {
  if (target.pid === undefined || !isRunning(target.pid)) return false;
  return portAnswers(host, target.port, timeoutMs);
}

/** Probes every target at once and stamps the healthy ones; returns the unhealthy ones. */
export async function probeAndRecord(options: {
  pool: DatabasePool;
  nodeId: string;
  host: string;
  targets: readonly ProbeTarget[];
}): Promise<readonly ProbeTarget[]> {
  const { targets } = options;
  const verdicts = await Promise.all(targets.map((target) => isHealthy(options.host, target)));
  const healthy = targets.filter((_, i) => verdicts[i]);
  await recordHealthChecks(
    options.pool,
    options.nodeId,
    healthy.map((t) => ({ port: t.port, instanceId: t.instanceId })),
  );
  return targets.filter((_, i) => !verdicts[i]);
}
