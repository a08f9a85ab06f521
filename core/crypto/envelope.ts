// Envelope encryption of third-party API keys: a fresh data key per key from a
// KeyProvider (AWS KMS or the local master key), AES-256-GCM with the
// encryption context as AAD. Owns the stored format (StoredEnvelope, version 1).
// See docs/decisions/0003-envelope-encryption.md.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { StoredEnvelope } from '../db/api-keys.js';
import type { KeyProviderName } from '../domain.js';
import { DecryptionError, KeyProviderUnavailableError } from '../errors.js';

/**
 * Who a key belongs to: the user's id and the MCP type's name (`github`, not
 * the type's row id). It is bound to the envelope twice: as the KMS encryption
 * context of the data key and as the GCM additional authenticated data.
 */
export interface EncryptionContext {
  userId: string;
  mcpType: string;
}

/** Wraps and unwraps per-key data keys under one master key. */
export interface KeyProvider {
  readonly name: KeyProviderName;
  readonly masterKeyId: string;
  /** A new 256-bit data key, in plaintext and wrapped. The caller zeroes `plaintext`. */
  generateDataKey(ctx: EncryptionContext): Promise<{ plaintext: Buffer; wrapped: Buffer }>;
  /** The plaintext data key (the caller zeroes it); DecryptionError when it cannot be unwrapped. */
  decryptDataKey(wrapped: Buffer, ctx: EncryptionContext, masterKeyId: string): Promise<Buffer>;
}

export interface EnvelopeCipher {
  encrypt(plaintext: string, ctx: EncryptionContext): Promise<StoredEnvelope>;
  /** Throws DecryptionError for any altered part or wrong context; never reveals the plaintext. */
  decrypt(envelope: StoredEnvelope, ctx: EncryptionContext): Promise<string>;
}

/** Version 1: AES-256-GCM, 96-bit IV, 128-bit tag, AAD = encryptionContextAad(ctx). */
export const ENVELOPE_VERSION = 1;

const ALGORITHM = 'aes-256-gcm';
const DATA_KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

const HEX_IV = /^[0-9a-f]{24}$/i;
const HEX_TAG = /^[0-9a-f]{32}$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** The context as KMS sees it (and as IAM conditions name it: kms:EncryptionContext:minimcp:user_id). */
export function kmsEncryptionContext(ctx: EncryptionContext): Record<string, string> {
  assertContext(ctx);
  return { 'minimcp:user_id': ctx.userId, 'minimcp:mcp_type': ctx.mcpType };
}

/**
 * The context as GCM additional authenticated data. JSON with a fixed key
 * order is unambiguous: no user id / type pair encodes like another.
 */
export function encryptionContextAad(ctx: EncryptionContext): Buffer {
  return Buffer.from(JSON.stringify(kmsEncryptionContext(ctx)), 'utf8');
}

function assertContext(ctx: EncryptionContext): void {
  if (
    typeof ctx?.userId !== 'string' ||
    ctx.userId === '' ||
    typeof ctx.mcpType !== 'string' ||
    ctx.mcpType === ''
  ) {
    throw new TypeError('encryption context needs a non-empty userId and mcpType');
  }
}

/** The hint shown instead of a key: its last 4 characters, and never more than a quarter of it. */
export function keyHint(plaintextKey: string): string {
  const chars = Array.from(plaintextKey);
  const shown = Math.min(4, Math.floor(chars.length / 4));
  return `…${chars.slice(chars.length - shown).join('')}`;
}

export function createEnvelopeCipher(options: { provider: KeyProvider }): EnvelopeCipher {
  const { provider } = options;

  return {
    async encrypt(plaintext, ctx) {
      const aad = encryptionContextAad(ctx);
      const dataKey = await provider.generateDataKey(ctx);
      try {
        if (dataKey.plaintext.length !== DATA_KEY_BYTES) {
          throw new KeyProviderUnavailableError(
            `key provider ${provider.name} returned a ${dataKey.plaintext.length}-byte data key, expected ${DATA_KEY_BYTES}`,
            { provider: provider.name, masterKeyId: provider.masterKeyId },
          );
        }
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv(ALGORITHM, dataKey.plaintext, iv, {
          authTagLength: TAG_BYTES,
        });
        cipher.setAAD(aad);
        const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
        return {
          ciphertext: ciphertext.toString('base64'),
          iv: iv.toString('hex'),
          authTag: cipher.getAuthTag().toString('hex'),
          wrappedDataKey: dataKey.wrapped.toString('base64'),
          provider: provider.name,
          masterKeyId: provider.masterKeyId,
          version: ENVELOPE_VERSION,
        };
      } finally {
        dataKey.plaintext.fill(0);
      }
    },

    async decrypt(envelope, ctx) {
      // Only ids and names go into the error: never key material or plaintext.
      const details = {
        userId: ctx?.userId,
        mcpType: ctx?.mcpType,
        provider: envelope?.provider,
        masterKeyId: envelope?.masterKeyId,
        version: envelope?.version,
      };
      const refuse = (reason: string, cause?: unknown): DecryptionError =>
        new DecryptionError(
          `API key of user ${String(details.userId)} for type ${String(details.mcpType)} cannot be decrypted: ${reason}`,
          details,
          cause === undefined ? undefined : { cause },
        );

      let aad: Buffer;
      try {
        aad = encryptionContextAad(ctx);
      } catch (error) {
        throw refuse('invalid encryption context', error);
      }
      checkEnvelope(envelope, provider.name, refuse);

      let dataKey: Buffer;
      try {
        dataKey = await provider.decryptDataKey(
          Buffer.from(envelope.wrappedDataKey, 'base64'),
          ctx,
          envelope.masterKeyId,
        );
      } catch (error) {
        // An unreachable provider is not a property of the envelope: the caller may retry.
        if (error instanceof KeyProviderUnavailableError) throw error;
        // The provider's own DecryptionError says why (which master key, which KMS error).
        const reason =
          error instanceof DecryptionError
            ? error.message
            : 'the data key cannot be unwrapped (altered wrapped key or wrong context)';
        throw refuse(reason, error);
      }

      try {
        return openEnvelope(envelope, dataKey, aad, refuse);
      } finally {
        dataKey.fill(0);
      }
    },
  };
}

type Refuse = (reason: string, cause?: unknown) => DecryptionError;

/** Refuses an envelope of another version or provider, or whose parts are not what encrypt() writes. */
function checkEnvelope(
  envelope: StoredEnvelope | undefined,
  providerName: string,
  refuse: Refuse,
): asserts envelope is StoredEnvelope {
  if (envelope?.version !== ENVELOPE_VERSION) {
    throw refuse(`unsupported envelope version ${String(envelope?.version)}`);
  }
  if (envelope.provider !== providerName) {
    throw refuse(
      `it was wrapped by key provider ${String(envelope.provider)}, this service uses ${providerName}`,
    );
  }
  if (
    typeof envelope.iv !== 'string' ||
    !HEX_IV.test(envelope.iv) ||
    typeof envelope.authTag !== 'string' ||
    !HEX_TAG.test(envelope.authTag) ||
    typeof envelope.ciphertext !== 'string' ||
    !BASE64.test(envelope.ciphertext) ||
    typeof envelope.wrappedDataKey !== 'string' ||
    envelope.wrappedDataKey === '' ||
    !BASE64.test(envelope.wrappedDataKey)
  ) {
    throw refuse('the stored envelope is malformed');
  }
}

/** AES-256-GCM open of the stored ciphertext with the unwrapped data key; plaintext buffers zeroed. */
function openEnvelope(
  envelope: StoredEnvelope,
  dataKey: Buffer,
  aad: Buffer,
  refuse: Refuse,
): string {
  try {
    if (dataKey.length !== DATA_KEY_BYTES)
      throw refuse('the unwrapped data key has the wrong size');
    const decipher = createDecipheriv(ALGORITHM, dataKey, Buffer.from(envelope.iv, 'hex'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(aad);
    decipher.setAuthTag(Buffer.from(envelope.authTag, 'hex'));
    const head = decipher.update(Buffer.from(envelope.ciphertext, 'base64'));
    try {
      const plaintext = Buffer.concat([head, decipher.final()]);
      try {
        return plaintext.toString('utf8');
      } finally {
        plaintext.fill(0);
      }
    } finally {
      // Unauthenticated bytes too, when final() refuses the tag.
      head.fill(0);
    }
  } catch (error) {
    if (error instanceof DecryptionError) throw error;
    throw refuse('authentication failed (altered ciphertext, IV or tag, or wrong context)', error);
  }
}
