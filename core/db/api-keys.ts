// api_keys: one envelope-encrypted third-party key per user and MCP type.
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { KeyProviderName } from '../domain.js';

export const ApiKeyRow = z.object({
  id: z.string().uuid(),
  user_id: z.string().uuid().nullable(),
  mcp_type_id: z.string().uuid(),
  encrypted_key: z.string(),
  key_hint: z.string().nullable(),
  encryption_iv: z.string(),
  auth_tag: z.string(),
  wrapped_data_key: z.string(),
  key_provider: KeyProviderName,
  master_key_id: z.string(),
  encryption_version: z.number().int(),
  is_active: z.boolean().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  expires_at: z.date().nullable(),
});
export type ApiKeyRow = z.infer<typeof ApiKeyRow>;

const keyColumns = sql.fragment`
  id, user_id, mcp_type_id, encrypted_key, key_hint, encryption_iv, auth_tag, wrapped_data_key,
  key_provider, master_key_id, encryption_version, is_active, created_at, updated_at, expires_at
`;

export interface StoredEnvelope {
  ciphertext: string;
  iv: string;
  authTag: string;
  wrappedDataKey: string;
  provider: KeyProviderName;
  masterKeyId: string;
  version: number;
}

export async function upsertApiKey(
  db: CommonQueryMethods,
  input: {
    userId: string;
    mcpTypeId: string;
    envelope: StoredEnvelope;
    hint: string;
    expiresAt: Date | null;
  },
): Promise<ApiKeyRow> {
  const e = input.envelope;
  return db.one(sql.type(ApiKeyRow)`
    INSERT INTO api_keys (user_id, mcp_type_id, encrypted_key, key_hint, encryption_iv, auth_tag,
                          wrapped_data_key, key_provider, master_key_id, encryption_version, is_active, expires_at)
    VALUES (${input.userId}, ${input.mcpTypeId}, ${e.ciphertext}, ${input.hint}, ${e.iv}, ${e.authTag},
            ${e.wrappedDataKey}, ${e.provider}, ${e.masterKeyId}, ${e.version}, true,
            ${input.expiresAt ? sql.timestamp(input.expiresAt) : null})
    ON CONFLICT (user_id, mcp_type_id) DO UPDATE SET
      encrypted_key = EXCLUDED.encrypted_key, key_hint = EXCLUDED.key_hint,
      encryption_iv = EXCLUDED.encryption_iv, auth_tag = EXCLUDED.auth_tag,
      wrapped_data_key = EXCLUDED.wrapped_data_key, key_provider = EXCLUDED.key_provider,
      master_key_id = EXCLUDED.master_key_id, encryption_version = EXCLUDED.encryption_version,
      is_active = true, expires_at = EXCLUDED.expires_at
    RETURNING ${keyColumns}
  `);
}

/** The active, unexpired key of the user for the type, if any. */
export async function findUsableApiKey(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
): Promise<ApiKeyRow | null> {
  return db.maybeOne(sql.type(ApiKeyRow)`
    SELECT ${keyColumns} FROM api_keys
    WHERE user_id = ${userId} AND mcp_type_id = ${mcpTypeId} AND is_active = true
      AND (expires_at IS NULL OR expires_at > CURRENT_TIMESTAMP)
  `);
}

export async function findApiKeyById(
  db: CommonQueryMethods,
  id: string,
): Promise<ApiKeyRow | null> {
  return db.maybeOne(sql.type(ApiKeyRow)`SELECT ${keyColumns} FROM api_keys WHERE id = ${id}`);
}

/** What a user may see of their keys: never the envelope. */
export const ApiKeySummaryRow = z.object({
  type: z.string(),
  key_hint: z.string().nullable(),
  is_active: z.boolean().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  expires_at: z.date().nullable(),
});
export type ApiKeySummaryRow = z.infer<typeof ApiKeySummaryRow>;

export async function listApiKeySummaries(
  db: CommonQueryMethods,
  userId: string,
): Promise<readonly ApiKeySummaryRow[]> {
  return db.any(sql.type(ApiKeySummaryRow)`
    SELECT mt.name AS type, ak.key_hint, ak.is_active, ak.created_at, ak.updated_at, ak.expires_at
    FROM api_keys ak JOIN mcp_types mt ON mt.id = ak.mcp_type_id
    WHERE ak.user_id = ${userId}
    ORDER BY mt.name
  `);
}

/** Deletes the user's key for the type, envelope and all; false when there was none. */
export async function deleteApiKey(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
): Promise<boolean> {
  const result = await db.query(sql.unsafe`
    DELETE FROM api_keys WHERE user_id = ${userId} AND mcp_type_id = ${mcpTypeId}
  `);
  return result.rowCount === 1;
}

/** The stored parts of a key row, as the envelope cipher reads them. */
export type EnvelopeColumns = Pick<
  ApiKeyRow,
  | 'encrypted_key'
  | 'encryption_iv'
  | 'auth_tag'
  | 'wrapped_data_key'
  | 'key_provider'
  | 'master_key_id'
  | 'encryption_version'
>;

export function envelopeFromRow(row: EnvelopeColumns): StoredEnvelope {
  return {
    ciphertext: row.encrypted_key,
    iv: row.encryption_iv,
    authTag: row.auth_tag,
    wrappedDataKey: row.wrapped_data_key,
    provider: row.key_provider,
    masterKeyId: row.master_key_id,
    version: row.encryption_version,
  };
}
