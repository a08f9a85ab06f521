// Children a previous agent left running (it was killed, or crashed), waiting
// for their instances to claim them: an instance whose child was started
// exactly as it would be started now (same command, arguments and environment,
// key included) takes it over instead of spawning; every other survivor is
// killed. What survives is decided from the children records (agent/child/child-registry.ts).
import { createHash } from 'node:crypto';
import { killRecordedGroup, type ChildRecord, type ChildRegistry } from './child-registry.js';
import type { ChildUsers } from './child-users.js';
import { removeChildStdio } from './child-stdio.js';

/** Digest of how a child is started; a changed key, config, command or user changes it. */
export function launchFingerprint(launch: {
  command: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** Whose user the child runs as: the agent's, or one of its own (MINIMCP_CHILD_UIDS). */
  runAs?: 'agent-user' | 'own-user';
}): string {
  const env = Object.entries(launch.env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const parts: unknown[] = [launch.command, launch.args, env];
  // Left out for the agent's user, so records written before users existed still match.
  if (launch.runAs === 'own-user') parts.push('own-user');
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
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

/**
 * Ends a previous agent's child for good: its group killed (if its pid is still
 * its own), its record dropped, its user id freed, its FIFO folder removed.
 */
export function killSurvivor(
  record: ChildRecord,
  owners: {
    registry?: ChildRegistry;
    users?: ChildUsers;
    /** Told when the FIFO folder could not be removed (the next agent start prunes it). */
    onDiagnostic?(message: string, context: Record<string, unknown>): void;
  },
): void {
  killRecordedGroup(record);
  owners.registry?.remove(record.pid);
  if (record.uid !== undefined) owners.users?.release(record.uid);
  if (record.stdioDir !== undefined)
    removeChildStdio(record.stdioDir).catch((error: unknown) =>
      owners.onDiagnostic?.('a survivor cleanup step failed', {
        step: 'remove the stdio folder of a killed survivor',
        label: record.label,
        pid: record.pid,
        err: String(error),
      }),
    );
}

export interface Survivors {
  /** The instance's surviving child if it was started with `fingerprint`; one started otherwise is killed. */
  claim(instanceId: string, fingerprint: string): ChildRecord | undefined;
  /**
   * Kills the survivors no instance claimed (deleted, moved or expired while no
   * agent ran), but those `pending` says an instance is about to claim.
   */
  killUnclaimed(pending?: (instanceId: string) => boolean): ChildRecord[];
  /** Survivors not claimed yet. */
  readonly size: number;
}

export function createSurvivors(
  records: readonly ChildRecord[],
  registry: ChildRegistry,
  users?: ChildUsers,
  onDiagnostic?: (message: string, context: Record<string, unknown>) => void,
): Survivors {
  const kill = (record: ChildRecord): void =>
    killSurvivor(record, { registry, users, ...(onDiagnostic ? { onDiagnostic } : {}) });
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
    killUnclaimed(pending) {
      const unclaimed = [...byInstance.values()].filter((record) => !pending?.(record.label));
      for (const record of unclaimed) {
        byInstance.delete(record.label);
        kill(record);
      }
      return unclaimed;
    },
    get size() {
      return byInstance.size;
    },
  };
}
