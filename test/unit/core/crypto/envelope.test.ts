// Envelope encryption with the local provider: round trip, the stored format,
// tampering with every stored part and every context swap → DecryptionError.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { StoredEnvelope } from '../../../../core/db/api-keys.js';
import {
  createEnvelopeCipher,
  ENVELOPE_VERSION,
  keyHint,
  type EncryptionContext,
  type KeyProvider,
} from '../../../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../../../core/crypto/local-provider.js';
import { DecryptionError, KeyProviderUnavailableError } from '../../../../core/errors.js';

const SECRET = 'ghp_abcdefghijklmnopqrstuvwxyz_0123456789';
const alice: EncryptionContext = {
  userId: '11111111-1111-4111-8111-111111111111',
  mcpType: 'github',
};
const bob: EncryptionContext = {
  userId: '22222222-2222-4222-8222-222222222222',
  mcpType: 'github',
};

async function localProvider(): Promise<KeyProvider> {
  return createLocalKeyProvider({ masterKeyBase64: randomBytes(32).toString('base64') });
}

/** Flips one bit of the decoded bytes and re-encodes: still well-formed, different content. */
function flipBit(encoded: string, encoding: 'hex' | 'base64', byteIndex = 0): string {
  const bytes = Buffer.from(encoded, encoding);
  bytes[byteIndex % bytes.length]! ^= 0x01;
  return bytes.toString(encoding);
}

async function expectRefused(promise: Promise<unknown>): Promise<DecryptionError> {
  const error = await promise.then(
    () => {
      throw new Error('decrypt succeeded but should have been refused');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DecryptionError);
  const refused = error as DecryptionError;
  expect(refused.code).toBe('KEY_UNDECRYPTABLE');
  // The plaintext never appears in the message, the context or the cause chain.
  let link: unknown = refused;
  while (link instanceof Error) {
    expect(link.message).not.toContain(SECRET);
    link = link.cause;
  }
  expect(JSON.stringify(refused.context)).not.toContain(SECRET);
  return refused;
}

describe('envelope encryption round trip', () => {
  it('decrypts what it encrypted, for the same user and type', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expect(cipher.decrypt(envelope, alice)).resolves.toBe(SECRET);
  });

  it('stores hex IV and tag, base64 ciphertext and wrapped key, the provider and the version', async () => {
    const provider = await localProvider();
    const envelope = await createEnvelopeCipher({ provider }).encrypt(SECRET, alice);
    expect(envelope.iv).toMatch(/^[0-9a-f]{24}$/);
    expect(envelope.authTag).toMatch(/^[0-9a-f]{32}$/);
    expect(Buffer.from(envelope.ciphertext, 'base64').toString('base64')).toBe(envelope.ciphertext);
    expect(Buffer.from(envelope.wrappedDataKey, 'base64')).toHaveLength(60);
    expect(envelope.provider).toBe('local');
    expect(envelope.masterKeyId).toBe(provider.masterKeyId);
    expect(envelope.version).toBe(ENVELOPE_VERSION);
    expect(JSON.stringify(envelope)).not.toContain(SECRET);
  });

  it('uses a fresh IV and data key for every encryption of the same key', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelopes = await Promise.all(
      Array.from({ length: 20 }, () => cipher.encrypt(SECRET, alice)),
    );
    expect(new Set(envelopes.map((e) => e.iv)).size).toBe(20);
    expect(new Set(envelopes.map((e) => e.wrappedDataKey)).size).toBe(20);
    expect(new Set(envelopes.map((e) => e.ciphertext)).size).toBe(20);
  });

  it('round-trips any string, including empty and non-ASCII ones', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 200 }), async (key) => {
        expect(await cipher.decrypt(await cipher.encrypt(key, alice), alice)).toBe(key);
      }),
      { numRuns: 100 },
    );
  });
});

describe('envelope tampering', () => {
  const parts = [
    ['ciphertext', 'base64'],
    ['iv', 'hex'],
    ['authTag', 'hex'],
    ['wrappedDataKey', 'base64'],
  ] as const;

  for (const [part, encoding] of parts) {
    it(`refuses an envelope whose ${part} was altered`, async () => {
      const cipher = createEnvelopeCipher({ provider: await localProvider() });
      const envelope = await cipher.encrypt(SECRET, alice);
      await expectRefused(
        cipher.decrypt({ ...envelope, [part]: flipBit(envelope[part], encoding) }, alice),
      );
    });
  }

  it('refuses a single flipped bit anywhere in any stored part', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...parts), fc.nat(), async ([part, encoding], byteIndex) => {
        const altered = { ...envelope, [part]: flipBit(envelope[part], encoding, byteIndex) };
        await expectRefused(cipher.decrypt(altered, alice));
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a truncated tag instead of checking fewer bits', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(
      cipher.decrypt({ ...envelope, authTag: envelope.authTag.slice(0, 8) }, alice),
    );
  });

  it('refuses a truncated or emptied ciphertext and wrapped key', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    const shorter = Buffer.from(envelope.ciphertext, 'base64').subarray(1).toString('base64');
    await expectRefused(cipher.decrypt({ ...envelope, ciphertext: shorter }, alice));
    await expectRefused(cipher.decrypt({ ...envelope, ciphertext: '' }, alice));
    await expectRefused(cipher.decrypt({ ...envelope, wrappedDataKey: '' }, alice));
    const wrappedShorter = Buffer.from(envelope.wrappedDataKey, 'base64')
      .subarray(4)
      .toString('base64');
    await expectRefused(cipher.decrypt({ ...envelope, wrappedDataKey: wrappedShorter }, alice));
  });

  it('refuses malformed encodings rather than decoding them leniently', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(
      cipher.decrypt({ ...envelope, iv: `${envelope.iv.slice(0, 22)}zz` }, alice),
    );
    await expectRefused(
      cipher.decrypt({ ...envelope, ciphertext: `${envelope.ciphertext}!` }, alice),
    );
  });

  it('refuses an unknown format version and another provider', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    const versionError = await expectRefused(cipher.decrypt({ ...envelope, version: 2 }, alice));
    expect(versionError.message).toContain('version 2');
    const providerError = await expectRefused(
      cipher.decrypt({ ...envelope, provider: 'aws-kms' }, alice),
    );
    expect(providerError.message).toContain('aws-kms');
  });

  it('refuses an envelope wrapped under another master key', async () => {
    const envelope = await createEnvelopeCipher({ provider: await localProvider() }).encrypt(
      SECRET,
      alice,
    );
    const other = createEnvelopeCipher({ provider: await localProvider() });
    const error = await expectRefused(other.decrypt(envelope, alice));
    expect(error.message).toContain(envelope.masterKeyId);
  });
});

describe('envelope encryption context', () => {
  it('refuses the right envelope with another user id', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(cipher.decrypt(envelope, bob));
  });

  it('refuses the right envelope with another MCP type', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(cipher.decrypt(envelope, { ...alice, mcpType: 'figma' }));
  });

  it("refuses one user's envelope moved into another user's row", async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const aliceEnvelope = await cipher.encrypt(SECRET, alice);
    const bobEnvelope = await cipher.encrypt('bob-own-key-0000', bob);
    // Bob's row now holds Alice's envelope; the agent decrypts it as Bob's.
    await expectRefused(cipher.decrypt(aliceEnvelope, bob));
    // Or only Alice's ciphertext, IV and tag under Bob's wrapped key.
    const spliced: StoredEnvelope = {
      ...aliceEnvelope,
      wrappedDataKey: bobEnvelope.wrappedDataKey,
    };
    await expectRefused(cipher.decrypt(spliced, bob));
    await expectRefused(cipher.decrypt(spliced, alice));
  });

  it('refuses a context whose fields were shifted between user id and type', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, { userId: 'ab', mcpType: 'c' });
    await expectRefused(cipher.decrypt(envelope, { userId: 'a', mcpType: 'bc' }));
  });

  it('refuses an empty context with DecryptionError and will not encrypt under one', async () => {
    const cipher = createEnvelopeCipher({ provider: await localProvider() });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(cipher.decrypt(envelope, { userId: '', mcpType: 'github' }));
    await expect(cipher.encrypt(SECRET, { userId: alice.userId, mcpType: '' })).rejects.toThrow(
      TypeError,
    );
  });
});

describe('data key hygiene', () => {
  /** A local provider that remembers every plaintext data key it handed out. */
  async function recordingProvider(): Promise<{ provider: KeyProvider; handedOut: Buffer[] }> {
    const inner = await localProvider();
    const handedOut: Buffer[] = [];
    return {
      handedOut,
      provider: {
        name: inner.name,
        masterKeyId: inner.masterKeyId,
        async generateDataKey(ctx) {
          const key = await inner.generateDataKey(ctx);
          handedOut.push(key.plaintext);
          return key;
        },
        async decryptDataKey(wrapped, ctx, masterKeyId) {
          const key = await inner.decryptDataKey(wrapped, ctx, masterKeyId);
          handedOut.push(key);
          return key;
        },
      },
    };
  }

  it('zeroes the plaintext data key after encrypting and after decrypting', async () => {
    const { provider, handedOut } = await recordingProvider();
    const cipher = createEnvelopeCipher({ provider });
    const envelope = await cipher.encrypt(SECRET, alice);
    await cipher.decrypt(envelope, alice);
    expect(handedOut).toHaveLength(2);
    for (const key of handedOut) {
      expect(key).toHaveLength(32);
      expect(key.every((byte) => byte === 0)).toBe(true);
    }
  });

  it('zeroes the data key when decryption fails', async () => {
    const { provider, handedOut } = await recordingProvider();
    const cipher = createEnvelopeCipher({ provider });
    const envelope = await cipher.encrypt(SECRET, alice);
    await expectRefused(
      cipher.decrypt({ ...envelope, authTag: flipBit(envelope.authTag, 'hex') }, alice),
    );
    expect(handedOut).toHaveLength(2);
    expect(handedOut[1]!.every((byte) => byte === 0)).toBe(true);
  });

  it('rejects a provider that hands out a data key of the wrong size, and zeroes it', async () => {
    const shortKey = Buffer.alloc(16, 7);
    const provider: KeyProvider = {
      name: 'local',
      masterKeyId: 'local:short',
      generateDataKey: async () => ({ plaintext: shortKey, wrapped: Buffer.alloc(60) }),
      decryptDataKey: async () => Buffer.alloc(32),
    };
    await expect(createEnvelopeCipher({ provider }).encrypt(SECRET, alice)).rejects.toBeInstanceOf(
      KeyProviderUnavailableError,
    );
    expect(shortKey.every((byte) => byte === 0)).toBe(true);
  });

  it('lets a provider outage through as KeyProviderUnavailableError, not as a broken envelope', async () => {
    const inner = await localProvider();
    const envelope = await createEnvelopeCipher({ provider: inner }).encrypt(SECRET, alice);
    const down: KeyProvider = {
      ...inner,
      name: inner.name,
      masterKeyId: inner.masterKeyId,
      generateDataKey: (ctx) => inner.generateDataKey(ctx),
      decryptDataKey: async () => {
        throw new KeyProviderUnavailableError('KMS unreachable');
      },
    };
    await expect(
      createEnvelopeCipher({ provider: down }).decrypt(envelope, alice),
    ).rejects.toBeInstanceOf(KeyProviderUnavailableError);
  });

  it('turns any other provider failure into DecryptionError', async () => {
    const inner = await localProvider();
    const envelope = await createEnvelopeCipher({ provider: inner }).encrypt(SECRET, alice);
    const broken: KeyProvider = {
      name: inner.name,
      masterKeyId: inner.masterKeyId,
      generateDataKey: (ctx) => inner.generateDataKey(ctx),
      decryptDataKey: async () => {
        throw new Error('something unexpected');
      },
    };
    await expectRefused(createEnvelopeCipher({ provider: broken }).decrypt(envelope, alice));
  });
});

describe('keyHint', () => {
  it('shows the last four characters of a key', () => {
    expect(keyHint(SECRET)).toBe('…6789');
    expect(keyHint('figd_abcdefghijabcd')).toBe('…abcd');
  });

  it('never shows more than a quarter of a short key', () => {
    expect(keyHint('abcdefgh')).toBe('…gh');
    expect(keyHint('abc')).toBe('…');
    expect(keyHint('')).toBe('…');
  });

  it('counts characters, not UTF-16 code units', () => {
    expect(keyHint('key-with-emoji-😀😀😀😀')).toBe('…😀😀😀😀');
  });
});
