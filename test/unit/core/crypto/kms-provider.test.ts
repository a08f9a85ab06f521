// The KMS provider against a mocked KMS client: the requests it sends, and the
// failures moto cannot produce (throttling, outages, odd answers).
// Binary inputs are inspected in callsFake: matching them by value fails
// (Buffer vs Uint8Array, see STACK-NOTES "aws-sdk-client-mock").
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  DecryptCommand,
  GenerateDataKeyCommand,
  InvalidCiphertextException,
  KMSClient,
  type DecryptCommandInput,
  type GenerateDataKeyCommandInput,
} from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { createEnvelopeCipher } from '../../../../core/crypto/envelope.js';
import { createKmsKeyProvider, isTransientKmsError } from '../../../../core/crypto/kms-provider.js';
import { DecryptionError, KeyProviderUnavailableError } from '../../../../core/errors.js';

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error as Error,
  );
}

const KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const alice = { userId: '11111111-1111-4111-8111-111111111111', mcpType: 'github' };
const kmsMock = mockClient(KMSClient);

function newProvider(keyId = KEY_ARN) {
  return createKmsKeyProvider({ kms: new KMSClient({ region: 'us-east-1' }), keyId });
}

function awsError(name: string, httpStatusCode?: number): Error {
  return Object.assign(new Error(`${name} from the mock`), {
    name,
    $metadata: httpStatusCode === undefined ? {} : { httpStatusCode },
  });
}

/** A fake KMS that wraps by prefixing the blob and remembers the requests. */
function fakeKms() {
  const generateInputs: GenerateDataKeyCommandInput[] = [];
  const decryptInputs: DecryptCommandInput[] = [];
  const handedOut: Uint8Array[] = [];
  let dataKey = new Uint8Array();
  kmsMock.on(GenerateDataKeyCommand).callsFake((input: GenerateDataKeyCommandInput) => {
    generateInputs.push(input);
    dataKey = new Uint8Array(randomBytes(32));
    handedOut.push(dataKey);
    return {
      KeyId: KEY_ARN,
      Plaintext: dataKey,
      CiphertextBlob: new Uint8Array([0xaa, ...dataKey]),
    };
  });
  kmsMock.on(DecryptCommand).callsFake((input: DecryptCommandInput) => {
    decryptInputs.push(input);
    const plaintext = new Uint8Array(input.CiphertextBlob!.subarray(1));
    handedOut.push(plaintext);
    return { KeyId: KEY_ARN, Plaintext: plaintext };
  });
  return { generateInputs, decryptInputs, handedOut };
}

afterEach(() => {
  kmsMock.reset();
});

describe('KMS provider requests', () => {
  it('asks GenerateDataKey for AES_256 under the key with the user/type encryption context', async () => {
    const kms = fakeKms();
    const provider = newProvider();
    await provider.generateDataKey(alice);
    expect(kms.generateInputs).toEqual([
      {
        KeyId: KEY_ARN,
        KeySpec: 'AES_256',
        EncryptionContext: { 'minimcp:user_id': alice.userId, 'minimcp:mcp_type': 'github' },
      },
    ]);
    expect(provider.name).toBe('aws-kms');
    expect(provider.masterKeyId).toBe(KEY_ARN);
  });

  it('decrypts with the same context and pins the stored key id', async () => {
    const kms = fakeKms();
    const cipher = createEnvelopeCipher({ provider: newProvider() });
    const envelope = await cipher.encrypt('ghp_secret_value_123456', alice);
    await expect(cipher.decrypt(envelope, alice)).resolves.toBe('ghp_secret_value_123456');
    expect(kms.decryptInputs).toHaveLength(1);
    const input = kms.decryptInputs[0]!;
    expect(input.KeyId).toBe(KEY_ARN);
    expect(input.EncryptionContext).toEqual({
      'minimcp:user_id': alice.userId,
      'minimcp:mcp_type': 'github',
    });
    expect(Buffer.from(input.CiphertextBlob!).toString('base64')).toBe(envelope.wrappedDataKey);
  });

  it('does not pin an alias on Decrypt, so envelopes survive the alias moving to a new key', async () => {
    const kms = fakeKms();
    for (const alias of ['alias/minimcp', 'arn:aws:kms:us-east-1:111122223333:alias/minimcp']) {
      const cipher = createEnvelopeCipher({ provider: newProvider(alias) });
      const envelope = await cipher.encrypt('ghp_secret_value_123456', alice);
      expect(envelope.masterKeyId).toBe(alias);
      await cipher.decrypt(envelope, alice);
    }
    expect(kms.decryptInputs.map((input) => input.KeyId)).toEqual([undefined, undefined]);
  });

  it("zeroes the SDK's own plaintext bytes after use", async () => {
    const kms = fakeKms();
    const cipher = createEnvelopeCipher({ provider: newProvider() });
    await cipher.decrypt(await cipher.encrypt('ghp_secret_value_123456', alice), alice);
    expect(kms.handedOut).toHaveLength(2);
    for (const bytes of kms.handedOut) expect(bytes.every((byte) => byte === 0)).toBe(true);
  });
});

describe('KMS provider failures', () => {
  it('maps InvalidCiphertextException (altered blob or wrong context) to DecryptionError', async () => {
    fakeKms();
    const cipher = createEnvelopeCipher({ provider: newProvider() });
    const envelope = await cipher.encrypt('ghp_secret_value_123456', alice);
    kmsMock
      .on(DecryptCommand)
      .rejects(
        new InvalidCiphertextException({ message: 'invalid', $metadata: { httpStatusCode: 400 } }),
      );
    const error = await rejectionOf(cipher.decrypt(envelope, alice));
    expect(error).toBeInstanceOf(DecryptionError);
    expect((error as Error).message).toContain('InvalidCiphertextException');
    expect((error as Error).message).not.toContain('ghp_secret');
  });

  it.each([
    ['AccessDeniedException', 400],
    ['IncorrectKeyException', 400],
    ['DisabledException', 400],
    ['KMSInvalidStateException', 400],
  ])('maps %s on Decrypt to DecryptionError', async (name, status) => {
    fakeKms();
    const cipher = createEnvelopeCipher({ provider: newProvider() });
    const envelope = await cipher.encrypt('ghp_secret_value_123456', alice);
    kmsMock.on(DecryptCommand).rejects(awsError(name, status));
    const error = (await rejectionOf(cipher.decrypt(envelope, alice))) as DecryptionError;
    expect(error).toBeInstanceOf(DecryptionError);
    expect(error.message).toContain(name);
  });

  it.each([
    ['ThrottlingException', 400],
    ['KMSInternalException', 500],
    ['DependencyTimeoutException', 503],
    ['ServiceUnavailable', 503],
    ['ECONNREFUSED', undefined],
  ])('maps %s on Decrypt to KeyProviderUnavailableError (retryable)', async (name, status) => {
    fakeKms();
    const cipher = createEnvelopeCipher({ provider: newProvider() });
    const envelope = await cipher.encrypt('ghp_secret_value_123456', alice);
    kmsMock.on(DecryptCommand).rejects(awsError(name, status));
    const error = (await rejectionOf(
      cipher.decrypt(envelope, alice),
    )) as KeyProviderUnavailableError;
    expect(error).toBeInstanceOf(KeyProviderUnavailableError);
    expect(error.httpStatus).toBe(503);
    expect(error.context).toMatchObject({
      provider: 'aws-kms',
      masterKeyId: KEY_ARN,
      kmsError: name,
    });
  });

  it('maps any GenerateDataKey failure to KeyProviderUnavailableError naming the key', async () => {
    kmsMock.on(GenerateDataKeyCommand).rejects(awsError('NotFoundException', 400));
    const error = await rejectionOf(
      createEnvelopeCipher({ provider: newProvider() }).encrypt('ghp_secret_value_123456', alice),
    );
    expect(error).toBeInstanceOf(KeyProviderUnavailableError);
    expect(error.message).toContain(KEY_ARN);
    expect(error.message).toContain('NotFoundException');
  });

  it('refuses a GenerateDataKey answer without a 256-bit key and zeroes what it got', async () => {
    const short = new Uint8Array(randomBytes(16));
    kmsMock
      .on(GenerateDataKeyCommand)
      .resolves({ Plaintext: short, CiphertextBlob: new Uint8Array([1]) });
    await expect(newProvider().generateDataKey(alice)).rejects.toBeInstanceOf(
      KeyProviderUnavailableError,
    );
    expect(short.every((byte) => byte === 0)).toBe(true);
    kmsMock.on(GenerateDataKeyCommand).resolves({ CiphertextBlob: new Uint8Array([1]) });
    await expect(newProvider().generateDataKey(alice)).rejects.toBeInstanceOf(
      KeyProviderUnavailableError,
    );
  });

  it('refuses a Decrypt answer without a 256-bit key', async () => {
    kmsMock.on(DecryptCommand).resolves({ Plaintext: new Uint8Array(8) });
    await expect(
      newProvider().decryptDataKey(Buffer.alloc(8), alice, KEY_ARN),
    ).rejects.toBeInstanceOf(DecryptionError);
  });
});

describe('isTransientKmsError', () => {
  it('treats throttling, 5xx and answerless failures as transient, client errors as final', () => {
    expect(isTransientKmsError(awsError('ThrottlingException', 400))).toBe(true);
    expect(isTransientKmsError(awsError('Whatever', 502))).toBe(true);
    expect(isTransientKmsError(awsError('TooManyRequests', 429))).toBe(true);
    expect(isTransientKmsError(new Error('socket hang up'))).toBe(true);
    expect(isTransientKmsError(awsError('InvalidCiphertextException', 400))).toBe(false);
    expect(isTransientKmsError(awsError('AccessDeniedException', 400))).toBe(false);
  });
});
