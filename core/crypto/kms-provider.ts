// The AWS KMS key provider: data keys from GenerateDataKey (AES_256) and
// unwrapped by Decrypt, both bound to the user/type encryption context.
import { DecryptCommand, GenerateDataKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { DecryptionError, KeyProviderUnavailableError } from '../errors.js';
import { kmsEncryptionContext, type KeyProvider } from './envelope.js';

const DATA_KEY_BYTES = 32;

/** Errors after which the same request may succeed later. */
const TRANSIENT_ERROR_NAMES = new Set([
  'ThrottlingException',
  'LimitExceededException',
  'KMSInternalException',
  'DependencyTimeoutException',
  'TimeoutError',
  'RequestTimeout',
]);

interface SdkErrorShape {
  name?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

function errorName(error: unknown): string {
  const name = (error as SdkErrorShape | null)?.name;
  return typeof name === 'string' ? name : 'unknown error';
}

/** Throttling, KMS-side faults and network failures (no HTTP answer at all). */
export function isTransientKmsError(error: unknown): boolean {
  if (TRANSIENT_ERROR_NAMES.has(errorName(error))) return true;
  const status = (error as SdkErrorShape | null)?.$metadata?.httpStatusCode;
  return typeof status !== 'number' || status >= 500 || status === 429;
}

/** Aliases can be repointed to another key; KMS finds the key of a symmetric blob itself. */
function isAlias(keyId: string): boolean {
  return keyId.startsWith('alias/') || /^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(keyId);
}

/**
 * A view on the SDK's own bytes rather than a copy, so that zeroing the
 * returned buffer leaves no second binary copy of the data key behind.
 */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function createKmsKeyProvider(options: { kms: KMSClient; keyId: string }): KeyProvider {
  const { kms, keyId } = options;

  return {
    name: 'aws-kms',
    masterKeyId: keyId,

    async generateDataKey(ctx) {
      const encryptionContext = kmsEncryptionContext(ctx);
      let output;
      try {
        output = await kms.send(
          new GenerateDataKeyCommand({
            KeyId: keyId,
            KeySpec: 'AES_256',
            EncryptionContext: encryptionContext,
          }),
        );
      } catch (error) {
        throw new KeyProviderUnavailableError(
          `KMS could not generate a data key under ${keyId} (${errorName(error)}); check the key and the role's kms:GenerateDataKey permission, then retry`,
          { provider: 'aws-kms', masterKeyId: keyId, kmsError: errorName(error) },
          { cause: error },
        );
      }
      const { Plaintext, CiphertextBlob } = output;
      if (!Plaintext || !CiphertextBlob || Plaintext.byteLength !== DATA_KEY_BYTES) {
        Plaintext?.fill(0);
        throw new KeyProviderUnavailableError(
          `KMS answered GenerateDataKey under ${keyId} without a 256-bit data key`,
          { provider: 'aws-kms', masterKeyId: keyId },
        );
      }
      return { plaintext: asBuffer(Plaintext), wrapped: Buffer.from(CiphertextBlob) };
    },

    async decryptDataKey(wrapped, ctx, masterKeyId) {
      const encryptionContext = kmsEncryptionContext(ctx);
      const details = { provider: 'aws-kms', masterKeyId };
      let output;
      try {
        output = await kms.send(
          new DecryptCommand({
            CiphertextBlob: wrapped,
            EncryptionContext: encryptionContext,
            // Pinning the key makes KMS refuse a blob wrapped under any other key.
            ...(isAlias(masterKeyId) ? {} : { KeyId: masterKeyId }),
          }),
        );
      } catch (error) {
        if (isTransientKmsError(error)) {
          throw new KeyProviderUnavailableError(
            `KMS could not be reached to unwrap a data key under ${masterKeyId} (${errorName(error)}); retry later`,
            { ...details, kmsError: errorName(error) },
            { cause: error },
          );
        }
        // InvalidCiphertextException (altered blob or wrong context), AccessDenied
        // (an IAM condition on the context), IncorrectKey, disabled key, ...
        throw new DecryptionError(
          `KMS refused to unwrap the data key under ${masterKeyId} (${errorName(error)})`,
          { ...details, kmsError: errorName(error) },
          { cause: error },
        );
      }
      const { Plaintext } = output;
      if (!Plaintext || Plaintext.byteLength !== DATA_KEY_BYTES) {
        Plaintext?.fill(0);
        throw new DecryptionError(`KMS returned no 256-bit data key under ${masterKeyId}`, details);
      }
      return asBuffer(Plaintext);
    },
  };
}
