// What the instance service's behaviours share: their dependencies as one
// typed object, and the caller's own instance read under row-level security.
import { isIP } from 'node:net';
import type { DatabasePool } from 'slonik';
import { findInstanceDetail, type InstanceDetailRow } from '../db/instance-details.js';
import type { InstanceStatus, JsonObject } from '../../../core/domain.js';
import { NotFoundError } from '../../../core/errors.js';
import type { Logger } from '../../../core/logger.js';
import type { AgentResolver } from '../agent-registry.js';
import type { CandidateNode, Placement } from '../db/placement.js';
import type { Transaction } from '../db/user-context.js';

/** Built once by createInstanceService, from its options and their defaults. */
export interface InstanceServiceDeps {
  /** The API's pool: row-level security applies to it. */
  pool: DatabasePool;
  agents: AgentResolver;
  /** Told about agent calls that failed where the job is left to the reconcile loop. */
  logger: Logger;
  /** Now, for expiry arithmetic. */
  clock: () => Date;
  heartbeatFreshSeconds: number;
  startWaitMs: number;
  notifyWaitMs: number;
  publicUrlFor: (node: CandidateNode, port: number) => string;
}

/** Who asked, for the audit trail. */
export interface RequestMeta {
  /** The caller's address; anything that is not an IP address is not recorded. */
  ip?: string | null;
  userAgent?: string | null;
  /** Passed to the agent to correlate its logs. */
  requestId?: string;
  /** Why, when the change is not the owner's own request (an account deleted or erased): kept in the event. */
  cause?: JsonObject;
}

export const MINUTE_MS = 60_000;

/** What a `created` or `restored` event records of where, and until when, the instance runs. */
export function placementEventData(placement: Placement, duration: number, expiresAt: Date) {
  return {
    duration_minutes: duration,
    expires_at: expiresAt.toISOString(),
    node_id: placement.node.id,
    node: placement.node.name,
    port: placement.port,
  };
}
export const LIVE: ReadonlySet<InstanceStatus> = new Set(['pending', 'running']);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function notFound(id: string): NotFoundError {
  return new NotFoundError(`instance ${id} not found`, { instanceId: id });
}

/** Reads the caller's live instance, locked for a change when asked; else NotFoundError. */
export async function findOwnInstance(
  tx: Transaction,
  id: string,
  lock = false,
): Promise<InstanceDetailRow> {
  // Not a UUID: no such instance (and no database error for a malformed id).
  if (!UUID.test(id)) throw notFound(id);
  const row = await findInstanceDetail(tx, id, { lock });
  if (!row) throw notFound(id);
  return row;
}

/** The audit columns of an event: a valid IP address only, a bounded user agent. */
export function auditMeta(meta: RequestMeta | undefined): {
  ipAddress: string | null;
  userAgent: string | null;
} {
  const ip = meta?.ip ?? null;
  return {
    ipAddress: ip !== null && isIP(ip) !== 0 ? ip : null,
    userAgent: meta?.userAgent ? meta.userAgent.slice(0, 1000) : null,
  };
}
