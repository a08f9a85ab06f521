// The real AWS SDK code paths against moto: KMS envelopes bound to their
// encryption context, and configuration read from SSM Parameter Store.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { createEnvelopeCipher } from '../../../../core/crypto/envelope.js';
import { createKmsKeyProvider } from '../../../../core/crypto/kms-provider.js';
import { createKeyProviderFromEnv } from '../../../../core/crypto/provider-from-env.js';
import { DecryptionError } from '../../../../core/errors.js';
import { loadParametersByPath } from '../../../../core/ssm-parameters.js';
import { MOTO_CLIENT_CONFIG, startMoto, type MotoServer } from '../../../support/moto.js';

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error as Error,
  );
}

const SECRET = 'ghp_moto_secret_0123456789abcdefghij';
const alice = { userId: '11111111-1111-4111-8111-111111111111', mcpType: 'github' };
const bob = { userId: '22222222-2222-4222-8222-222222222222', mcpType: 'github' };

describe('AWS code paths against moto', () => {
  let moto: MotoServer;
  let kms: KMSClient;
  let ssm: SSMClient;
  let keyArn: string;
  let otherKeyArn: string;

  beforeAll(async () => {
    moto = await startMoto();
    kms = new KMSClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
    ssm = new SSMClient({ ...MOTO_CLIENT_CONFIG, endpoint: moto.endpoint });
    const created = await kms.send(new CreateKeyCommand({ Description: 'minimcp api keys' }));
    keyArn = created.KeyMetadata!.Arn!;
    const other = await kms.send(new CreateKeyCommand({ Description: 'another key' }));
    otherKeyArn = other.KeyMetadata!.Arn!;
  });

  afterAll(async () => {
    try {
      kms?.destroy();
      ssm?.destroy();
    } finally {
      await moto?.stop();
    }
  });

  describe('KMS envelopes', () => {
    it('round-trips a key through GenerateDataKey and Decrypt', async () => {
      const cipher = createEnvelopeCipher({
        provider: createKmsKeyProvider({ kms, keyId: keyArn }),
      });
      const envelope = await cipher.encrypt(SECRET, alice);
      expect(envelope).toMatchObject({ provider: 'aws-kms', masterKeyId: keyArn, version: 1 });
      await expect(cipher.decrypt(envelope, alice)).resolves.toBe(SECRET);
    });

    it('is refused by KMS itself when the wrapped key is unwrapped under another context', async () => {
      const provider = createKmsKeyProvider({ kms, keyId: keyArn });
      const { wrapped } = await provider.generateDataKey(alice);
      const error = await rejectionOf(provider.decryptDataKey(wrapped, bob, keyArn));
      expect(error).toBeInstanceOf(DecryptionError);
      expect(error.message).toContain('InvalidCiphertextException');
    });

    it("refuses an envelope moved to another user's or type's context", async () => {
      const cipher = createEnvelopeCipher({
        provider: createKmsKeyProvider({ kms, keyId: keyArn }),
      });
      const envelope = await cipher.encrypt(SECRET, alice);
      await expect(cipher.decrypt(envelope, bob)).rejects.toBeInstanceOf(DecryptionError);
      await expect(cipher.decrypt(envelope, { ...alice, mcpType: 'figma' })).rejects.toBeInstanceOf(
        DecryptionError,
      );
    });

    it('refuses an altered wrapped data key', async () => {
      const cipher = createEnvelopeCipher({
        provider: createKmsKeyProvider({ kms, keyId: keyArn }),
      });
      const envelope = await cipher.encrypt(SECRET, alice);
      const wrapped = Buffer.from(envelope.wrappedDataKey, 'base64');
      wrapped[wrapped.length - 1]! ^= 0x01;
      await expect(
        cipher.decrypt({ ...envelope, wrappedDataKey: wrapped.toString('base64') }, alice),
      ).rejects.toBeInstanceOf(DecryptionError);
    });

    it('decrypts envelopes of a previous KMS key with a provider configured for a new one', async () => {
      const old = createEnvelopeCipher({
        provider: createKmsKeyProvider({ kms, keyId: otherKeyArn }),
      });
      const envelope = await old.encrypt(SECRET, alice);
      const current = createEnvelopeCipher({
        provider: createKmsKeyProvider({ kms, keyId: keyArn }),
      });
      await expect(current.decrypt(envelope, alice)).resolves.toBe(SECRET);
    });

    it('is what createKeyProviderFromEnv builds from KMS_KEY_ID and AWS_ENDPOINT_URL_KMS', async () => {
      const saved = {
        id: process.env.AWS_ACCESS_KEY_ID,
        secret: process.env.AWS_SECRET_ACCESS_KEY,
      };
      // The env-built client takes credentials from the default chain, like on AWS.
      process.env.AWS_ACCESS_KEY_ID = 'testing';
      process.env.AWS_SECRET_ACCESS_KEY = 'testing';
      try {
        const provider = await createKeyProviderFromEnv({
          KMS_KEY_ID: keyArn,
          AWS_ENDPOINT_URL_KMS: moto.endpoint,
          AWS_REGION: MOTO_CLIENT_CONFIG.region,
        });
        expect(provider.name).toBe('aws-kms');
        const cipher = createEnvelopeCipher({ provider });
        const envelope = await cipher.encrypt(SECRET, alice);
        // Unwrapped through the test's own client: the env-built one really went to moto.
        const direct = createEnvelopeCipher({
          provider: createKmsKeyProvider({ kms, keyId: keyArn }),
        });
        await expect(direct.decrypt(envelope, alice)).resolves.toBe(SECRET);
      } finally {
        for (const [name, value] of [
          ['AWS_ACCESS_KEY_ID', saved.id],
          ['AWS_SECRET_ACCESS_KEY', saved.secret],
        ] as const) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
    });
  });

  describe('SSM parameters', () => {
    it('loads String and SecureString parameters under a path, decrypted, across pages', async () => {
      const prefix = '/minimcp/test';
      await ssm.send(
        new PutParameterCommand({
          Name: `${prefix}/DATABASE_URL`,
          Value: 'postgres://db/minimcp',
          Type: 'String',
        }),
      );
      await ssm.send(
        new PutParameterCommand({
          Name: `${prefix}/MINIMCP_ADMIN_TOKEN`,
          Value: 'admin-token-secret-value',
          Type: 'SecureString',
        }),
      );
      await ssm.send(
        new PutParameterCommand({
          Name: `${prefix}/nested/MINIMCP_MASTER_KEY`,
          Value: 'nested-secure',
          Type: 'SecureString',
          KeyId: keyArn,
        }),
      );
      // More than one page (GetParametersByPath returns at most 10 per call).
      for (let i = 0; i < 12; i += 1) {
        await ssm.send(
          new PutParameterCommand({ Name: `${prefix}/many/p${i}`, Value: `v${i}`, Type: 'String' }),
        );
      }
      await ssm.send(
        new PutParameterCommand({
          Name: '/minimcp/other/DATABASE_URL',
          Value: 'elsewhere',
          Type: 'String',
        }),
      );
      await ssm.send(
        new PutParameterCommand({
          Name: '/minimcp/testing/X',
          Value: 'sibling prefix',
          Type: 'String',
        }),
      );

      const parameters = await loadParametersByPath({ ssm, path: prefix });

      expect(parameters.DATABASE_URL).toBe('postgres://db/minimcp');
      expect(parameters.MINIMCP_ADMIN_TOKEN).toBe('admin-token-secret-value');
      expect(parameters['nested/MINIMCP_MASTER_KEY']).toBe('nested-secure');
      for (let i = 0; i < 12; i += 1) expect(parameters[`many/p${i}`]).toBe(`v${i}`);
      expect(Object.keys(parameters)).toHaveLength(15);
    });
  });
});

describe('the moto harness', () => {
  it('stops its server: the endpoint no longer answers, and stop() can be called again', async () => {
    const moto = await startMoto();
    const answer = await fetch(`${moto.endpoint}/moto-api/`);
    await answer.arrayBuffer();
    expect(answer.ok).toBe(true);

    await moto.stop();

    await expect(fetch(`${moto.endpoint}/moto-api/`)).rejects.toThrow();
    await expect(moto.stop()).resolves.toBeUndefined();
  });
});
