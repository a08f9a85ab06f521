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

/** The user's key for the type, whatever its state (see keyUsability), if any. */
export async function findApiKey(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
): Promise<ApiKeyRow | null> {
  return db.maybeOne(sql.type(ApiKeyRow)`
    SELECT ${keyColumns} FROM api_keys WHERE user_id = ${userId} AND mcp_type_id = ${mcpTypeId}
  `);
}

/** Whether a stored key may start an instance: admission and the agent ask the same. */
export type KeyUsability = 'usable' | 'disabled' | 'expired';

export function keyUsability(
  row: Pick<ApiKeyRow, 'is_active' | 'expires_at'>,
  now: Date = new Date(),
): KeyUsability {
  // Expired first: enabling would not be enough, a new key (PUT, which also enables) is.
  if (row.expires_at !== null && row.expires_at.getTime() <= now.getTime()) return 'expired';
  if (row.is_active !== true) return 'disabled';
  return 'usable';
}

/**
 * Disables or re-enables the user's key for the type: the changed row, or
 * null when there is none or it already was so (then nothing was written).
 */
export async function setApiKeyActive(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
  active: boolean,
): Promise<ApiKeyRow | null> {
  return db.maybeOne(sql.type(ApiKeyRow)`
    UPDATE api_keys SET is_active = ${active}
    WHERE user_id = ${userId} AND mcp_type_id = ${mcpTypeId}
      AND is_active IS DISTINCT FROM ${active}
    RETURNING ${keyColumns}
  `);
}

export async function findApiKeyById(
  db: CommonQueryMethods,
  id: string,
): Promise<ApiKeyRow | null> {
  return db.maybeOne(sql.type(ApiKeyRow)`SELECT ${keyColumns} FROM api_keys WHERE id = ${id}`);
}

/**
 * The schema document's "API Key Usage Check", as GET /v1/keys answers it:
 * each key (never the envelope) with its running instances and its last use
 * (the newest instance made with it). Two departures from the document's
 * form: disabled keys are listed too (marked, so they can be enabled again),
 * and last use counts every instance, not only the running ones.
 */
export const KeyUsageRow = z.object({
  id: z.string().uuid(),
  type: z.string(),
  display_name: z.string(),
  key_hint: z.string().nullable(),
  is_active: z.boolean().nullable(),
  created_at: z.date(),
  updated_at: z.date(),
  expires_at: z.date().nullable(),
  active_instances: z.number().int(),
  last_used: z.date().nullable(),
});
export type KeyUsageRow = z.infer<typeof KeyUsageRow>;

const keyUsageSelect = sql.fragment`
  SELECT
    ak.id, mt.name AS type, mt.display_name, ak.key_hint, ak.is_active,
    ak.created_at, ak.updated_at, ak.expires_at,
    COUNT(mi.id) FILTER (WHERE mi.status = 'running' AND mi.deleted_at IS NULL) AS active_instances,
    MAX(mi.created_at) AS last_used
  FROM api_keys ak
  JOIN mcp_types mt ON ak.mcp_type_id = mt.id
  LEFT JOIN mcp_instances mi ON ak.id = mi.api_key_id
`;

export async function listKeyUsage(
  db: CommonQueryMethods,
  userId: string,
): Promise<readonly KeyUsageRow[]> {
  return db.any(sql.type(KeyUsageRow)`
    ${keyUsageSelect}
    WHERE ak.user_id = ${userId}
    GROUP BY ak.id, mt.name, mt.display_name
    ORDER BY mt.name
  `);
}

/** One key's entry of listKeyUsage, or null when the user has none for the type. */
export async function findKeyUsage(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
): Promise<KeyUsageRow | null> {
  return db.maybeOne(sql.type(KeyUsageRow)`
    ${keyUsageSelect}
    WHERE ak.user_id = ${userId} AND ak.mcp_type_id = ${mcpTypeId}
    GROUP BY ak.id, mt.name, mt.display_name
  `);
}

/** Deletes the user's key for the type, envelope and all; what it was (for the audit trail), or null when there was none. */
export async function deleteApiKey(
  db: CommonQueryMethods,
  userId: string,
  mcpTypeId: string,
): Promise<{ id: string; key_hint: string | null } | null> {
  return db.maybeOne(sql.type(z.object({ id: z.string().uuid(), key_hint: z.string().nullable() }))`
    DELETE FROM api_keys WHERE user_id = ${userId} AND mcp_type_id = ${mcpTypeId}
    RETURNING id, key_hint
  `);
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
