// Changes to an existing instance: delete, extend, restore and rotate its
// token. Each is one transaction as the user (row locked, `mcp_events` row
// written alongside), then a call to the node's agent.
import { z } from 'zod';
import { findFirstEventData, insertEvent } from '../../../core/db/events.js';
import {
  reassignInstance,
  setInstanceExpiry,
  setInstanceToken,
  softDeleteInstance,
} from '../db/instance-changes.js';
import { getTypeById } from '../../../core/db/mcp-types.js';
import { releasePortsOfInstance } from '../../../core/db/ports.js';
import { getSettings } from '../../../core/db/settings.js';
import type { InstanceStatus } from '../../../core/domain.js';
import { ConflictError, ValidationError } from '../../../core/errors.js';
import { issueToken } from '../../../core/tokens.js';
import { placeInstance } from '../db/placement.js';
import { asUser, type Transaction } from '../db/user-context.js';
import { checkActive, checkInstanceLimit, checkKey, maxDurationOf } from './admission.js';
import { notifyAgent, startOnAgent, type StartOutcome } from './agent-calls.js';
import {
  auditMeta,
  findOwnInstance,
  LIVE,
  MINUTE_MS,
  placementEventData,
  type InstanceServiceDeps,
  type RequestMeta,
} from './deps.js';
import { toView, type InstanceView } from './views.js';

const RESTORABLE: ReadonlySet<InstanceStatus> = new Set(['expired', 'disconnected', 'error']);

const CreatedData = z.object({ duration_minutes: z.number().int().positive() });

/** Soft delete: afterwards the instance is not found. */
export async function deleteInstance(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  meta: RequestMeta | undefined,
): Promise<void> {
  const row = await asUser(deps.pool, userId, async (tx) => {
    const current = await findOwnInstance(tx, id, true);
    await softDeleteInstance(tx, id);
    const released = await releasePortsOfInstance(tx, id);
    await insertEvent(tx, {
      instanceId: id,
      userId,
      type: 'deleted',
      data: {
        status: current.status,
        node_id: current.node_id,
        port: current.assigned_port,
        ports_released: released,
        ...(meta?.cause ? { cause: meta.cause } : {}),
      },
      ...auditMeta(meta),
    });
    return current;
  });
  // Only a live instance has a process to stop; the reconciler stops it anyway.
  if (LIVE.has(row.status)) await notifyAgent(deps, row, { stop: 'STOP_REASON_DELETED' }, meta);
}

export async function extendInstance(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  minutes: number,
  meta: RequestMeta | undefined,
): Promise<InstanceView> {
  if (!Number.isInteger(minutes) || minutes < 1)
    throw new ValidationError(`minutes must be a whole number of at least 1, got ${minutes}`, {
      minutes,
    });
  const row = await asUser(deps.pool, userId, async (tx) => {
    const current = await findOwnInstance(tx, id, true);
    if (!LIVE.has(current.status))
      throw new ConflictError(
        `instance ${id} is ${current.status}: only a pending or running instance can be extended (restore it instead)`,
        { instanceId: id, status: current.status },
      );
    const type = await getTypeById(tx, current.mcp_type_id);
    const maxDuration = maxDurationOf(type);
    const now = deps.clock().getTime();
    const base = Math.max(now, current.expires_at.getTime());
    const expiresAt = new Date(base + minutes * MINUTE_MS);
    if (expiresAt.getTime() - now > maxDuration * MINUTE_MS) {
      const room = Math.max(0, Math.floor((now + maxDuration * MINUTE_MS - base) / MINUTE_MS));
      throw new ValidationError(
        `extending by ${minutes} minutes would leave ${Math.ceil((expiresAt.getTime() - now) / MINUTE_MS)} minutes to run, but type ${type.name} allows at most ${maxDuration} minutes from now: extend by at most ${room} minutes`,
        { instanceId: id, minutes, maxDurationMinutes: maxDuration, maxExtensionMinutes: room },
      );
    }
    await setInstanceExpiry(tx, id, expiresAt);
    await insertEvent(tx, {
      instanceId: id,
      userId,
      type: 'extended',
      data: {
        minutes,
        previous_expires_at: current.expires_at.toISOString(),
        expires_at: expiresAt.toISOString(),
      },
      ...auditMeta(meta),
    });
    return findOwnInstance(tx, id);
  });
  // The agent re-reads the row and re-arms its expiry timer now rather than at the old expiry.
  await notifyAgent(deps, row, { start: 'START_REASON_EXTENDED' }, meta);
  return toView(row);
}

/**
 * Its original duration, as its `created` event recorded it (events past
 * retention are gone: then the default), within today's maximum.
 */
async function restoredDuration(tx: Transaction, id: string, maxDuration: number) {
  const created = CreatedData.safeParse(await findFirstEventData(tx, id, 'created'));
  return Math.min(
    created.success
      ? created.data.duration_minutes
      : (await getSettings(tx))['mcp.default_duration_minutes'],
    maxDuration,
  );
}

export async function restoreInstance(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  meta: RequestMeta | undefined,
): Promise<StartOutcome> {
  const row = await asUser(deps.pool, userId, async (tx) => {
    const current = await findOwnInstance(tx, id, true);
    if (!RESTORABLE.has(current.status))
      throw new ConflictError(
        `instance ${id} is ${current.status}: only an expired, disconnected or errored instance can be restored`,
        { instanceId: id, status: current.status },
      );
    const type = await getTypeById(tx, current.mcp_type_id);
    checkActive(type);
    await checkInstanceLimit(tx, userId);
    const apiKeyId = await checkKey(tx, userId, type);
    const duration = await restoredDuration(tx, id, maxDurationOf(type));
    // Whatever it may still hold goes back first; it may land on another node.
    await releasePortsOfInstance(tx, id);
    const placement = await placeInstance(tx, id, {
      heartbeatFreshSeconds: deps.heartbeatFreshSeconds,
    });
    const expiresAt = new Date(deps.clock().getTime() + duration * MINUTE_MS);
    await reassignInstance(tx, id, {
      nodeId: placement.node.id,
      port: placement.port,
      accessUrl: deps.publicUrlFor(placement.node, placement.port),
      expiresAt,
      apiKeyId,
    });
    await insertEvent(tx, {
      instanceId: id,
      userId,
      type: 'restored',
      data: {
        previous_status: current.status,
        ...placementEventData(placement, duration, expiresAt),
      },
      ...auditMeta(meta),
    });
    return findOwnInstance(tx, id);
  });
  return startOnAgent(deps, userId, row, 'START_REASON_RESTORED', meta);
}

/** The new token is shown once, here. */
export async function rotateInstanceToken(
  deps: InstanceServiceDeps,
  userId: string,
  id: string,
  meta: RequestMeta | undefined,
): Promise<{ instance: InstanceView; accessToken: string }> {
  const token = issueToken('access');
  const row = await asUser(deps.pool, userId, async (tx) => {
    const current = await findOwnInstance(tx, id, true);
    await setInstanceToken(tx, id, { hash: token.hash, prefix: token.displayPrefix });
    await insertEvent(tx, {
      instanceId: id,
      userId,
      type: 'token_rotated',
      data: { previous_prefix: current.access_token_prefix, prefix: token.displayPrefix },
      ...auditMeta(meta),
    });
    return findOwnInstance(tx, id);
  });
  // The gateway caches the token hash: a live instance picks up the new one now.
  if (LIVE.has(row.status))
    await notifyAgent(deps, row, { start: 'START_REASON_TOKEN_ROTATED' }, meta);
  return { instance: toView(row), accessToken: token.token };
}
