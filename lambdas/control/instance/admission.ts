// Whether a user may run an instance of a type now, as create and restore ask
// it: the type is active, the user's key for it is usable, the user is under
// the per-user limit, the duration is within the type's maximum, and (when an
// admin requires it) the user's email address is verified.
import { findApiKey, keyUsability } from '../../../core/db/api-keys.js';
import { countLiveInstancesOfUser, lockUserInstances } from '../db/instance-changes.js';
import type { McpTypeRow } from '../../../core/db/mcp-types.js';
import { getSettings, type Settings } from '../../../core/db/settings.js';
import {
  ConflictError,
  EmailNotVerifiedError,
  InstanceLimitError,
  KeyMissingError,
  ValidationError,
} from '../../../core/errors.js';
import type { Transaction } from '../db/user-context.js';
import { isEmailVerified } from '../db/users.js';

/** The schema's upper bound of max_duration_minutes (a year), for types that leave it null. */
const MAX_DURATION_MINUTES = 525_600;

export function maxDurationOf(type: McpTypeRow): number {
  return type.max_duration_minutes ?? MAX_DURATION_MINUTES;
}

export function checkActive(type: McpTypeRow): void {
  if (!type.is_active)
    throw new ConflictError(`MCP type ${type.name} is disabled: no new instances of it can run`, {
      type: type.name,
    });
}

/** The asked duration, or the default within the type's maximum; else ValidationError. */
export function checkDuration(
  type: McpTypeRow,
  asked: number | undefined,
  defaultMinutes: number,
): number {
  const maxDuration = maxDurationOf(type);
  const duration = asked ?? Math.min(defaultMinutes, maxDuration);
  if (!Number.isInteger(duration) || duration < 1 || duration > maxDuration)
    throw new ValidationError(
      `duration_minutes must be a whole number between 1 and ${maxDuration} for type ${type.name}, got ${duration}`,
      { type: type.name, durationMinutes: duration, maxDurationMinutes: maxDuration },
    );
  return duration;
}

/**
 * The id of the user's usable key for the type (null if it needs none); else
 * KeyMissingError saying whether it is missing, disabled or expired, and what to do.
 */
export async function checkKey(
  tx: Transaction,
  userId: string,
  type: McpTypeRow,
): Promise<string | null> {
  if (!type.requires_key) return null;
  const name = type.name;
  const key = await findApiKey(tx, userId, type.id);
  if (!key)
    throw new KeyMissingError(
      `type ${name} needs your API key and none is stored: store one with PUT /v1/keys/${name}`,
      { type: name, reason: 'missing' },
    );
  const usability = keyUsability(key);
  if (usability === 'expired')
    throw new KeyMissingError(
      `your ${name} key (${key.key_hint ?? 'no hint'}) expired at ${key.expires_at?.toISOString()}: store a new one with PUT /v1/keys/${name}`,
      { type: name, reason: 'expired' },
    );
  if (usability === 'disabled')
    throw new KeyMissingError(
      `your ${name} key (${key.key_hint ?? 'no hint'}) is disabled: enable it with POST /v1/keys/${name}/enable, or store a new one with PUT /v1/keys/${name}`,
      { type: name, reason: 'disabled' },
    );
  return key.id;
}

/** Holds the user's instance lock until the transaction ends; InstanceLimitError at the limit. */
export async function checkInstanceLimit(tx: Transaction, userId: string): Promise<void> {
  await lockUserInstances(tx, userId);
  const limit = (await getSettings(tx))['mcp.max_instances_per_user'];
  const live = await countLiveInstancesOfUser(tx, userId);
  if (live >= limit)
    throw new InstanceLimitError(
      `you have ${live} pending or running instances and the limit is ${limit}: delete one or let one expire first`,
      { limit, live },
    );
}

/** With users.require_verified_email on, only a user whose address is verified passes. */
export async function checkVerifiedEmail(
  tx: Transaction,
  userId: string,
  settings: Settings,
): Promise<void> {
  if (!settings['users.require_verified_email']) return;
  if (await isEmailVerified(tx, userId)) return;
  throw new EmailNotVerifiedError(
    'your email address is not verified, and this MiniMCP requires it to create instances: open the link sent to you, or ask for a new one with POST /v1/auth/verify/request',
    { userId },
  );
}
