// The end of an account. An admin soft-deletes a user: the row stays
// (deleted_at), their API tokens are revoked and their keys deactivated, and
// their instances stop through the instance service's delete path (so each
// writes its `deleted` event and its agent is told). A user erases their own
// account: the same stops, then keys and tokens deleted and personal fields
// cleared, as the schema document's GDPR note asks.
import type { DatabasePool } from 'slonik';
import type { JsonObject } from '../../core/domain.js';
import { ConflictError, NotFoundError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import {
  deactivateKeysOfUser,
  deleteKeysAndTokensOfUser,
  listUndeletedInstanceIds,
  scrubInstancesOfUser,
} from './db/account-data.js';
import { insertAccountEvent, type AccountActor } from './db/account-events.js';
import { deleteVerificationTokensOfUser } from './db/email-verifications.js';
import { asSystem, asUser } from './db/user-context.js';
import { revokeAllUserTokens } from './db/user-tokens.js';
import { eraseUserFields, findUserById, softDeleteUser, type UserRow } from './db/users.js';
import type { InstanceService } from './instance-service.js';
import { auditMeta, type RequestMeta } from './instance/deps.js';

export interface AccountDeps {
  /** The API's pool: row-level security applies to it. */
  pool: DatabasePool;
  instances: InstanceService;
  logger: Logger;
}

/** Instances stopped at once; each stop waits (bounded) for its agent. */
const STOP_CONCURRENCY = 8;

/**
 * Deletes every instance of the user that is not deleted yet, through the
 * instance service (event `deleted` with `cause`, port released, agent told).
 */
export async function stopInstancesOfUser(
  deps: AccountDeps,
  userId: string,
  cause: JsonObject,
  meta: RequestMeta | undefined,
): Promise<number> {
  const ids = await asUser(deps.pool, userId, (tx) => listUndeletedInstanceIds(tx, userId));
  let stopped = 0;
  for (let start = 0; start < ids.length; start += STOP_CONCURRENCY) {
    const batch = ids.slice(start, start + STOP_CONCURRENCY);
    const outcomes = await Promise.allSettled(
      batch.map((id) => deps.instances.delete(userId, id, { ...meta, cause })),
    );
    for (const outcome of outcomes) {
      if (outcome.status === 'fulfilled') stopped += 1;
      // Deleted by a concurrent request meanwhile: that is the state we want.
      else if (!(outcome.reason instanceof NotFoundError)) throw outcome.reason;
    }
  }
  return stopped;
}

function causeOf(reason: string, actor: AccountActor): JsonObject {
  return {
    reason,
    actor: actor.kind,
    ...('userId' in actor ? { actor_user_id: actor.userId } : {}),
  };
}

/**
 * Soft-deletes a user (admin). Repeating it on a deleted user stops whatever
 * of theirs is still running (a first attempt cut short) and writes no second
 * event. NotFoundError when there is no such user.
 */
export async function deleteUserAccount(
  deps: AccountDeps,
  userId: string,
  actor: AccountActor,
  meta?: RequestMeta,
): Promise<{ user: UserRow; instancesStopped: number }> {
  if ('userId' in actor && actor.userId === userId)
    throw new ConflictError(
      'an admin cannot delete their own account here: use DELETE /v1/me to erase it',
      { userId },
    );
  const user = await asSystem(deps.pool, async (tx) => {
    const existing = await findUserById(tx, userId);
    if (!existing || existing.deleted_at !== null) return existing;
    const deleted = await softDeleteUser(tx, userId);
    if (!deleted) return findUserById(tx, userId);
    const tokensRevoked = await revokeAllUserTokens(tx, userId);
    const keysDeactivated = await deactivateKeysOfUser(tx, userId);
    await insertAccountEvent(tx, {
      userId,
      actor,
      type: 'deleted',
      data: { tokens_revoked: tokensRevoked, keys_deactivated: keysDeactivated },
      ...auditMeta(meta),
    });
    return deleted;
  });
  if (!user) throw new NotFoundError(`user ${userId} not found`, { userId });
  const instancesStopped = await stopInstancesOfUser(
    deps,
    userId,
    causeOf('user_deleted', actor),
    meta,
  );
  deps.logger.info({ userId, actor: actor.kind, instancesStopped }, 'user deleted');
  return { user, instancesStopped };
}

export interface ErasureSummary {
  instancesStopped: number;
  keysDeleted: number;
  tokensDeleted: number;
  logsDeleted: number;
}

/**
 * Erases the caller's account: instances stopped, then in one transaction
 * keys, tokens and verification tokens deleted, logs deleted, instance
 * configs and event addresses cleared, personal fields replaced, and the
 * `erased` event (ids only) written. The request's address is not recorded:
 * it would be personal data written at the moment of erasure.
 */
export async function eraseOwnAccount(
  deps: AccountDeps,
  userId: string,
  meta?: RequestMeta,
): Promise<ErasureSummary> {
  const actor: AccountActor = { kind: 'user', userId };
  const anonymous: RequestMeta = meta?.requestId ? { requestId: meta.requestId } : {};
  const instancesStopped = await stopInstancesOfUser(
    deps,
    userId,
    causeOf('user_erased', actor),
    anonymous,
  );
  const summary = await asSystem(deps.pool, async (tx) => {
    const removed = await deleteKeysAndTokensOfUser(tx, userId);
    await deleteVerificationTokensOfUser(tx, userId);
    const scrubbed = await scrubInstancesOfUser(tx, userId);
    await eraseUserFields(tx, userId);
    const result = {
      instancesStopped,
      keysDeleted: removed.keys,
      tokensDeleted: removed.tokens,
      logsDeleted: scrubbed.logs,
    };
    await insertAccountEvent(tx, {
      userId,
      actor,
      type: 'erased',
      data: {
        instances_stopped: result.instancesStopped,
        keys_deleted: result.keysDeleted,
        tokens_deleted: result.tokensDeleted,
        logs_deleted: result.logsDeleted,
      },
    });
    return result;
  });
  // An instance created between the first sweep and the commit (the caller's
  // tokens worked until then): stopped now that no token does.
  summary.instancesStopped += await stopInstancesOfUser(
    deps,
    userId,
    causeOf('user_erased', actor),
    anonymous,
  );
  deps.logger.info({ userId, ...summary }, 'account erased');
  return summary;
}
