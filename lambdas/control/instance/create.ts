// Creating an instance: check the type, duration and config, then in one
// transaction as the user check the limit and key, place it on a node with a
// port, insert the row and its `created` event; then ask the agent to start it.
import { randomUUID } from 'node:crypto';
import { insertEvent } from '../../../core/db/events.js';
import { insertInstance, setInstancePort } from '../db/instance-changes.js';
import { findTypeByName } from '../../../core/db/mcp-types.js';
import { getSettings } from '../../../core/db/settings.js';
import type { JsonObject } from '../../../core/domain.js';
import { ValidationError } from '../../../core/errors.js';
import { issueToken } from '../../../core/tokens.js';
import { placeInstance } from '../db/placement.js';
import { asUser } from '../db/user-context.js';
import { resolveInstanceConfig } from '../instance-config.js';
import {
  checkActive,
  checkDuration,
  checkInstanceLimit,
  checkKey,
  checkVerifiedEmail,
} from './admission.js';
import { startOnAgent, type StartOutcome } from './agent-calls.js';
import {
  auditMeta,
  findOwnInstance,
  MINUTE_MS,
  placementEventData,
  type InstanceServiceDeps,
  type RequestMeta,
} from './deps.js';

export interface CreateInstanceInput extends RequestMeta {
  userId: string;
  type: string;
  durationMinutes?: number;
  config?: JsonObject;
}

/** The access token is shown once, here, whatever the outcome. */
export type CreateOutcome = StartOutcome & { accessToken: string };

export async function createInstance(
  deps: InstanceServiceDeps,
  input: CreateInstanceInput,
): Promise<CreateOutcome> {
  const { pool } = deps;
  const type = await findTypeByName(pool, input.type);
  if (!type)
    throw new ValidationError(
      `type "${input.type}" does not exist: GET /v1/types lists the available ones`,
      { type: input.type },
    );
  checkActive(type);
  const settings = await getSettings(pool);
  const duration = checkDuration(
    type,
    input.durationMinutes,
    settings['mcp.default_duration_minutes'],
  );
  const resolved = resolveInstanceConfig(type, input.config);
  if (!resolved.ok) throw new ValidationError(resolved.message, { type: type.name });

  const id = randomUUID();
  const token = issueToken('access');
  const expiresAt = new Date(deps.clock().getTime() + duration * MINUTE_MS);
  const row = await asUser(pool, input.userId, async (tx) => {
    await checkVerifiedEmail(tx, input.userId, settings);
    await checkInstanceLimit(tx, input.userId);
    const apiKeyId = await checkKey(tx, input.userId, type);
    const placement = await placeInstance(tx, id, {
      heartbeatFreshSeconds: deps.heartbeatFreshSeconds,
    });
    await insertInstance(tx, {
      id,
      userId: input.userId,
      mcpTypeId: type.id,
      apiKeyId,
      nodeId: placement.node.id,
      accessTokenHash: token.hash,
      accessTokenPrefix: token.displayPrefix,
      accessUrl: deps.publicUrlFor(placement.node, placement.port),
      expiresAt,
      config: resolved.value,
    });
    await setInstancePort(tx, id, placement.port);
    await insertEvent(tx, {
      instanceId: id,
      userId: input.userId,
      type: 'created',
      data: { type: type.name, ...placementEventData(placement, duration, expiresAt) },
      ...auditMeta(input),
    });
    return findOwnInstance(tx, id);
  });
  const outcome = await startOnAgent(deps, input.userId, row, 'START_REASON_CREATED', input);
  return { ...outcome, accessToken: token.token };
}
