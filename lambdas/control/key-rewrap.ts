// Re-wraps stored API keys under a new master key: each key not yet under the
// target provider is decrypted with the old one and re-encrypted with the new
// one, in batches, one transaction per batch, in the system scope.
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { DecryptionError } from '../../core/errors.js';
import { ApiKeyRow, envelopeFromRow } from '../../core/db/api-keys.js';
import { asSystem } from './db/user-context.js';
import { createEnvelopeCipher, type KeyProvider } from '../../core/crypto/envelope.js';

const RewrapRow = ApiKeyRow.pick({
  id: true,
  user_id: true,
  encrypted_key: true,
  encryption_iv: true,
  auth_tag: true,
  wrapped_data_key: true,
  key_provider: true,
  master_key_id: true,
  encryption_version: true,
}).extend({ mcp_type: z.string() });

export interface RewrapFailure {
  keyId: string;
  /** Non-secret reason, e.g. the DecryptionError message. */
  reason: string;
}

export interface RewrapResult {
  rewrapped: number;
  failed: RewrapFailure[];
}

export interface RewrapOptions {
  /** A pool whose role may take the system scope (the API role or the owner). */
  pool: DatabasePool;
  /** Decrypts the existing envelopes. */
  from: KeyProvider;
  /** Wraps the new ones. */
  to: KeyProvider;
  /** Keys per transaction. */
  batchSize?: number;
  /** Called after each committed batch with the totals so far. */
  onBatch?: (progress: RewrapResult) => void;
}

const FIRST_ID = '00000000-0000-0000-0000-000000000000';

/**
 * Safe to interrupt and to run again: a batch commits or rolls back as a
 * whole, and keys already under `to` are not selected. A key that `from`
 * cannot decrypt is reported and left untouched; a provider outage aborts the
 * run. Every new envelope is decrypted once with `to` before it is written,
 * so a key without decrypt permission cannot strand the stored keys.
 */
export async function rewrapApiKeys(options: RewrapOptions): Promise<RewrapResult> {
  const { pool, from, to } = options;
  const batchSize = options.batchSize ?? 100;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  }
  const oldCipher = createEnvelopeCipher({ provider: from });
  const newCipher = createEnvelopeCipher({ provider: to });
  const result: RewrapResult = { rewrapped: 0, failed: [] };
  let after = FIRST_ID;

  for (;;) {
    const batch = await asSystem(pool, async (tx) => {
      const rows = await tx.any(sql.type(RewrapRow)`
        SELECT ak.id, ak.user_id, mt.name AS mcp_type, ak.encrypted_key, ak.encryption_iv,
               ak.auth_tag, ak.wrapped_data_key, ak.key_provider, ak.master_key_id,
               ak.encryption_version
        FROM api_keys ak
        JOIN mcp_types mt ON mt.id = ak.mcp_type_id
        WHERE (ak.key_provider, ak.master_key_id) <> (${to.name}, ${to.masterKeyId})
          AND ak.id > ${after}
        ORDER BY ak.id
        LIMIT ${batchSize}
        FOR UPDATE OF ak
      `);
      let rewrapped = 0;
      const failed: RewrapFailure[] = [];
      for (const row of rows) {
        if (row.user_id === null) {
          failed.push({ keyId: row.id, reason: 'the key belongs to no user' });
          continue;
        }
        const ctx = { userId: row.user_id, mcpType: row.mcp_type };
        let plaintext: string;
        try {
          plaintext = await oldCipher.decrypt(envelopeFromRow(row), ctx);
        } catch (error) {
          // Only this key is unusable; the others still move. Outages propagate.
          if (!(error instanceof DecryptionError)) throw error;
          failed.push({ keyId: row.id, reason: error.message });
          continue;
        }
        const envelope = await newCipher.encrypt(plaintext, ctx);
        if ((await newCipher.decrypt(envelope, ctx)) !== plaintext) {
          throw new Error(
            `re-wrapped key ${row.id} does not decrypt to the original; nothing written for this batch`,
          );
        }
        await tx.query(sql.unsafe`
          UPDATE api_keys SET
            encrypted_key = ${envelope.ciphertext}, encryption_iv = ${envelope.iv},
            auth_tag = ${envelope.authTag}, wrapped_data_key = ${envelope.wrappedDataKey},
            key_provider = ${envelope.provider}, master_key_id = ${envelope.masterKeyId},
            encryption_version = ${envelope.version}
          WHERE id = ${row.id}
        `);
        rewrapped += 1;
      }
      return { rows: rows.length, lastId: rows.at(-1)?.id, rewrapped, failed };
    });
    result.rewrapped += batch.rewrapped;
    result.failed.push(...batch.failed);
    if (batch.rows > 0)
      options.onBatch?.({ rewrapped: result.rewrapped, failed: [...result.failed] });
    if (batch.lastId === undefined || batch.rows < batchSize) break;
    after = batch.lastId;
  }
  return result;
}
