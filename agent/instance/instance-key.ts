// An instance's API key: read from its row and decrypted for its owner and
// type, with the provider's failures turned into what the owner can act on.
import type { DatabasePool } from 'slonik';
import type { EnvelopeCipher } from '../../core/crypto/envelope.js';
import { envelopeFromRow, findApiKeyById, keyUsability } from '../../core/db/api-keys.js';
import type { RuntimeSpecRow } from '../../core/db/instances.js';
import { DecryptionError, KeyMissingError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/**
 * The plaintext key of the instance, or undefined for a type that runs
 * without one. KeyMissingError when it should have one and has none (deleted,
 * or no owner) or its key is disabled or expired (every start asks, re-attach
 * included, as for a deleted key); DecryptionError when the stored key cannot
 * be decrypted.
 */
export async function decryptInstanceKey(
  spec: RuntimeSpecRow,
  deps: { pool: DatabasePool; cipher: EnvelopeCipher; log: Logger },
): Promise<string | undefined> {
  const instanceId = spec.id;
  if (!spec.api_key_id) {
    if (spec.requires_key)
      throw new KeyMissingError(`type ${spec.type_name} needs a key and the instance has none`, {
        instanceId,
      });
    return undefined;
  }
  const row = await findApiKeyById(deps.pool, spec.api_key_id);
  if (!row)
    throw new KeyMissingError(`the ${spec.type_name} key of this instance was deleted`, {
      instanceId,
    });
  const usability = keyUsability(row);
  const type = spec.type_name;
  if (usability === 'expired')
    throw new KeyMissingError(
      `the ${type} key of this instance expired at ${row.expires_at?.toISOString()}: store a new one with PUT /v1/keys/${type}, then restore the instance`,
      { instanceId, reason: 'expired' },
    );
  if (usability === 'disabled')
    throw new KeyMissingError(
      `the ${type} key of this instance is disabled: enable it with POST /v1/keys/${type}/enable, then restore the instance`,
      { instanceId, reason: 'disabled' },
    );
  if (!spec.user_id)
    throw new KeyMissingError('the instance has no owner to decrypt its key for', { instanceId });
  try {
    return await deps.cipher.decrypt(envelopeFromRow(row), {
      userId: spec.user_id,
      mcpType: spec.type_name,
    });
  } catch (error) {
    if (!(error instanceof DecryptionError)) throw error;
    // The provider's reason (master key id or ARN, KMS error) is for
    // operators; the owner reads the failure (instance error, its log,
    // the API's 502) and is told what to do.
    deps.log.warn({ err: error.message }, 'the stored key of this instance cannot be decrypted');
    throw new DecryptionError(
      `the stored ${type} key cannot be decrypted (altered, or not this user's or type's key); store it again with PUT /v1/keys/${type}`,
      { instanceId },
      { cause: error },
    );
  }
}

/** What the child's output is redacted of: the key, and strings inside a JSON key (a refresh token, a client secret). */
export function secretsOf(key: string | undefined): string[] {
  if (!key) return [];
  const secrets = [key];
  try {
    const parsed: unknown = JSON.parse(key);
    if (parsed && typeof parsed === 'object') {
      for (const value of Object.values(parsed))
        if (typeof value === 'string' && value.length >= 8) secrets.push(value);
    }
  } catch {
    // A plain token: the whole string is the secret.
  }
  return secrets;
}
