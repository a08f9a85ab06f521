// The local key provider: the master key file (0600, created once, shared by
// concurrent starters), key validation, and wrapping bound to the context.
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createEnvelopeCipher } from '../../../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../../../core/crypto/local-provider.js';
import { DecryptionError } from '../../../../core/errors.js';

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error as Error,
  );
}

const alice = { userId: '11111111-1111-4111-8111-111111111111', mcpType: 'github' };

describe('local master key file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-localkey-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('creates the key file with mode 0600 (and its folder) on first use', async () => {
    const file = path.join(dir, 'nested', 'state', 'master.key');
    const provider = await createLocalKeyProvider({ keyFile: file });
    const info = await stat(file);
    expect(info.mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')).toHaveLength(32);
    expect(provider.name).toBe('local');
    expect(provider.masterKeyId).toMatch(/^local:[0-9a-f]{16}$/);
  });

  it('creates 0600 whatever the umask says', async () => {
    const file = path.join(dir, 'umask.key');
    const previous = process.umask(0o000);
    try {
      await createLocalKeyProvider({ keyFile: file });
    } finally {
      process.umask(previous);
    }
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('reuses the existing key on the next start: old envelopes still decrypt', async () => {
    const file = path.join(dir, 'reuse.key');
    const first = await createLocalKeyProvider({ keyFile: file });
    const envelope = await createEnvelopeCipher({ provider: first }).encrypt(
      'ghp_secret_value_123456',
      alice,
    );
    const contentBefore = await readFile(file, 'utf8');

    const second = await createLocalKeyProvider({ keyFile: file });
    expect(second.masterKeyId).toBe(first.masterKeyId);
    expect(await readFile(file, 'utf8')).toBe(contentBefore);
    await expect(createEnvelopeCipher({ provider: second }).decrypt(envelope, alice)).resolves.toBe(
      'ghp_secret_value_123456',
    );
  });

  it('gives concurrent first starters one and the same key', async () => {
    const file = path.join(dir, 'race', 'master.key');
    const providers = await Promise.all(
      Array.from({ length: 8 }, () => createLocalKeyProvider({ keyFile: file })),
    );
    expect(new Set(providers.map((p) => p.masterKeyId)).size).toBe(1);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses a key file that group or others can read', async () => {
    const file = path.join(dir, 'loose.key');
    await writeFile(file, `${randomBytes(32).toString('base64')}\n`);
    await chmod(file, 0o644);
    await expect(createLocalKeyProvider({ keyFile: file })).rejects.toThrow(/mode 644.*chmod 600/);
  });

  it('refuses a key file that does not hold 32 bytes of base64, without echoing it', async () => {
    const file = path.join(dir, 'short.key');
    const content = randomBytes(16).toString('base64');
    await writeFile(file, content, { mode: 0o600 });
    const error = await rejectionOf(createLocalKeyProvider({ keyFile: file }));
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toContain('16 bytes');
    expect(error.message).not.toContain(content);
  });
});

describe('local master key from env', () => {
  it('accepts a 32-byte base64 key and derives a stable id from it', async () => {
    const key = randomBytes(32).toString('base64');
    const a = await createLocalKeyProvider({ masterKeyBase64: key });
    const b = await createLocalKeyProvider({ masterKeyBase64: `${key}\n` });
    expect(a.masterKeyId).toBe(b.masterKeyId);
    const other = await createLocalKeyProvider({
      masterKeyBase64: randomBytes(32).toString('base64'),
    });
    expect(other.masterKeyId).not.toBe(a.masterKeyId);
  });

  it('refuses keys of the wrong size or encoding without echoing them', async () => {
    for (const bad of [
      randomBytes(16).toString('base64'),
      'not base64 at all!',
      randomBytes(33).toString('base64'),
    ]) {
      const error = await rejectionOf(createLocalKeyProvider({ masterKeyBase64: bad }));
      expect(error).toBeInstanceOf(Error);
      expect(error.message).toContain('MINIMCP_MASTER_KEY');
      expect(error.message).not.toContain(bad);
    }
  });

  it('refuses to guess when given both a key and a key file, or neither', async () => {
    await expect(
      createLocalKeyProvider({
        masterKeyBase64: randomBytes(32).toString('base64'),
        keyFile: '/tmp/x.key',
      }),
    ).rejects.toThrow(/not both/);
    await expect(createLocalKeyProvider({})).rejects.toThrow(/needs a master key/);
  });
});

describe('local data key wrapping', () => {
  it('unwraps its own data key for the same context', async () => {
    const provider = await createLocalKeyProvider({
      masterKeyBase64: randomBytes(32).toString('base64'),
    });
    const { plaintext, wrapped } = await provider.generateDataKey(alice);
    expect(plaintext).toHaveLength(32);
    expect(wrapped).toHaveLength(60);
    expect(wrapped.includes(plaintext)).toBe(false);
    await expect(provider.decryptDataKey(wrapped, alice, provider.masterKeyId)).resolves.toEqual(
      plaintext,
    );
  });

  it('refuses to unwrap for another context, under another key id, or when altered', async () => {
    const provider = await createLocalKeyProvider({
      masterKeyBase64: randomBytes(32).toString('base64'),
    });
    const { wrapped } = await provider.generateDataKey(alice);
    await expect(
      provider.decryptDataKey(wrapped, { ...alice, mcpType: 'gmail' }, provider.masterKeyId),
    ).rejects.toBeInstanceOf(DecryptionError);
    await expect(
      provider.decryptDataKey(wrapped, alice, 'local:0000000000000000'),
    ).rejects.toBeInstanceOf(DecryptionError);
    const altered = Buffer.from(wrapped);
    altered[59]! ^= 0x80;
    await expect(
      provider.decryptDataKey(altered, alice, provider.masterKeyId),
    ).rejects.toBeInstanceOf(DecryptionError);
    await expect(
      provider.decryptDataKey(wrapped.subarray(1), alice, provider.masterKeyId),
    ).rejects.toBeInstanceOf(DecryptionError);
  });
});
