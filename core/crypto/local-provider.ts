// The local key provider for the one-machine stack: a 256-bit master key from
// env or from a key file (created 0600 on first use) wraps each data key with
// AES-256-GCM, the encryption context as AAD.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { link, mkdir, open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DecryptionError } from '../errors.js';
import { encryptionContextAad, type KeyProvider } from './envelope.js';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Wrapped data key layout: IV (12) | tag (16) | encrypted data key (32). */
const WRAPPED_BYTES = IV_BYTES + TAG_BYTES + KEY_BYTES;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface LocalKeyProviderOptions {
  /** Path of the master key file (base64); created with mode 0600 when absent. */
  keyFile?: string;
  /** The master key itself, 32 bytes in base64 (`openssl rand -base64 32`). */
  masterKeyBase64?: string;
}

function parseMasterKey(base64: string, source: string): Buffer {
  const text = base64.trim();
  const key = BASE64.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (key.length !== KEY_BYTES) {
    // The value itself never goes into the message.
    throw new Error(
      `${source} must hold a 256-bit key in base64 (44 characters, e.g. from \`openssl rand -base64 32\`), got ${key.length === 0 ? 'something else' : `${key.length} bytes`}`,
    );
  }
  return key;
}

function isErrnoError(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === code;
}

async function readKeyFile(file: string): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const { mode } = await handle.stat();
    if ((mode & 0o077) !== 0) {
      throw new Error(
        `master key file ${file} is accessible to group or others (mode ${(mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``,
      );
    }
    return parseMasterKey(await handle.readFile('utf8'), `master key file ${file}`);
  } finally {
    await handle.close();
  }
}

/**
 * Creates the key file atomically: the key is written to a private temporary
 * file that is then hard-linked into place, so a concurrent starter either
 * wins the link or reads a complete file, never a half-written one.
 */
async function createKeyFile(file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temporary = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  const key = randomBytes(KEY_BYTES);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.chmod(0o600); // exactly 0600 whatever the umask
      await handle.writeFile(`${key.toString('base64')}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temporary, file).catch((error: unknown) => {
      // Another process created it first: theirs is the key.
      if (!isErrnoError(error, 'EEXIST')) throw error;
    });
  } finally {
    key.fill(0);
    await unlink(temporary).catch((error: unknown) => {
      if (!isErrnoError(error, 'ENOENT')) throw error;
    });
  }
}

async function loadOrCreateKeyFile(file: string): Promise<Buffer> {
  try {
    return await readKeyFile(file);
  } catch (error) {
    if (!isErrnoError(error, 'ENOENT')) throw error;
  }
  await createKeyFile(file);
  return readKeyFile(file);
}

/** A stable, non-secret name for a master key: an HMAC of a fixed label under it. */
function masterKeyIdOf(masterKey: Buffer): string {
  return `local:${createHmac('sha256', masterKey).update('minimcp master key id').digest('hex').slice(0, 16)}`;
}

export async function createLocalKeyProvider(
  options: LocalKeyProviderOptions,
): Promise<KeyProvider> {
  const { keyFile, masterKeyBase64 } = options;
  if (keyFile && masterKeyBase64) {
    throw new Error(
      'give the local master key either in env (MINIMCP_MASTER_KEY) or as a file, not both',
    );
  }
  let masterKey: Buffer;
  if (masterKeyBase64) masterKey = parseMasterKey(masterKeyBase64, 'MINIMCP_MASTER_KEY');
  else if (keyFile) masterKey = await loadOrCreateKeyFile(path.resolve(keyFile));
  else throw new Error('the local key provider needs a master key file or a base64 master key');
  const masterKeyId = masterKeyIdOf(masterKey);

  return {
    name: 'local',
    masterKeyId,

    async generateDataKey(ctx) {
      const aad = encryptionContextAad(ctx);
      const plaintext = randomBytes(KEY_BYTES);
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const encrypted = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return { plaintext, wrapped: Buffer.concat([iv, cipher.getAuthTag(), encrypted]) };
    },

    async decryptDataKey(wrapped, ctx, wrappedUnder) {
      const details = { provider: 'local', masterKeyId: wrappedUnder };
      if (wrappedUnder !== masterKeyId) {
        throw new DecryptionError(
          `the data key was wrapped under local master key ${wrappedUnder}, this service holds ${masterKeyId}; re-wrap with infra/cli/rewrap-keys.ts`,
          details,
        );
      }
      if (wrapped.length !== WRAPPED_BYTES) {
        throw new DecryptionError(
          `a wrapped data key is ${WRAPPED_BYTES} bytes, got ${wrapped.length}`,
          details,
        );
      }
      const aad = encryptionContextAad(ctx);
      const decipher = createDecipheriv('aes-256-gcm', masterKey, wrapped.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(aad);
      decipher.setAuthTag(wrapped.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      const head = decipher.update(wrapped.subarray(IV_BYTES + TAG_BYTES));
      try {
        return Buffer.concat([head, decipher.final()]);
      } catch (error) {
        throw new DecryptionError(
          'the wrapped data key failed authentication (altered, or a different user/type context)',
          details,
          { cause: error },
        );
      } finally {
        head.fill(0);
      }
    },
  };
}
