// Children a previous agent left running (it was killed, or crashed), waiting
// for their instances to claim them: an instance whose child was started
// exactly as it would be started now (same command, arguments and environment,
// key included) takes it over instead of spawning; every other survivor is
// killed. What survives is decided from the children records (agent/child-registry.ts).
import { createHash } from 'node:crypto';
import type { ChildRecord, ChildRegistry } from './child-registry.js';
import type { ChildUsers } from './child-users.js';
import { removeChildStdio } from './child-stdio.js';
import { killGroup } from './proc.js';

/** Digest of how a child is started; a changed key, config or command changes it. */
export function launchFingerprint(launch: {
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
}): string {
  const env = Object.entries(launch.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash('sha256')
    .update(JSON.stringify([launch.command, launch.args, env]))
    .digest('base64url');
}

/** A record a new agent can take over: an instance's child that had answered `initialize`. */
export function isReattachable(record: ChildRecord): boolean {
  return (
    record.stdioDir !== undefined &&
    record.fingerprint !== undefined &&
    record.initializeResult !== undefined &&
    !record.label.startsWith('warm-pool:')
  );
}

export interface Survivors {
  /** The instance's surviving child if it was started with `fingerprint`; one started otherwise is killed. */
  claim(instanceId: string, fingerprint: string): ChildRecord | undefined;
  /** Kills the survivors no instance claimed (deleted, moved or expired while no agent ran). */
  killUnclaimed(): ChildRecord[];
  /** Survivors not claimed yet. */
  readonly size: number;
}

export function createSurvivors(
  records: readonly ChildRecord[],
  registry: ChildRegistry,
  users?: ChildUsers,
): Survivors {
  const kill = (record: ChildRecord): void => {
    killGroup(record.pgid, 'SIGKILL');
    registry.remove(record.pid);
    if (record.uid !== undefined) users?.release(record.uid);
    if (record.stdioDir !== undefined) void removeChildStdio(record.stdioDir);
  };
  const byInstance = new Map<string, ChildRecord>();
  for (const record of records) {
    const other = byInstance.get(record.label);
    // Two children of one instance (a crash while one replaced the other): the newer one stays.
    if (other !== undefined && other.spawnedAt >= record.spawnedAt) {
      kill(record);
      continue;
    }
    if (other !== undefined) kill(other);
    byInstance.set(record.label, record);
  }
  return {
    claim(instanceId, fingerprint) {
      const record = byInstance.get(instanceId);
      if (record === undefined) return undefined;
      byInstance.delete(instanceId);
      if (record.fingerprint === fingerprint) return record;
      kill(record);
      return undefined;
    },
    killUnclaimed() {
      const unclaimed = [...byInstance.values()];
      byInstance.clear();
      for (const record of unclaimed) kill(record);
      return unclaimed;
    },
    get size() {
      return byInstance.size;
    },
  };
}
