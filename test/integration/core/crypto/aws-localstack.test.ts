// Opt-in: the KMS provider and the SSM loader against a running LocalStack
// (LOCALSTACK_URL=http://127.0.0.1:4566 npm test). Skipped when it is not set.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { DeleteParametersCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { randomBytes } from 'node:crypto';
import { createEnvelopeCipher } from '../../../../core/crypto/envelope.js';
import { createKmsKeyProvider } from '../../../../core/crypto/kms-provider.js';
import { DecryptionError } from '../../../../core/errors.js';
import { loadParametersByPath } from '../../../../core/ssm-parameters.js';

const LOCALSTACK_URL = process.env.LOCALSTACK_URL;
const describeWithLocalstack = LOCALSTACK_URL ? describe : describe.skip;

const clientConfig = {
  region: process.env.AWS_REGION ?? 'us-east-1',
  endpoint: LOCALSTACK_URL,
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
};
const alice = { userId: '11111111-1111-4111-8111-111111111111', mcpType: 'github' };
const bob = { userId: '22222222-2222-4222-8222-222222222222', mcpType: 'github' };

describeWithLocalstack('AWS code paths against LocalStack', () => {
  let kms: KMSClient;
  let ssm: SSMClient;
  let keyArn: string;
  const prefix = `/minimcp-test-${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    kms = new KMSClient(clientConfig);
    ssm = new SSMClient(clientConfig);
    keyArn = (await kms.send(new CreateKeyCommand({ Description: 'minimcp test' }))).KeyMetadata!
      .Arn!;
  });
  afterAll(async () => {
    try {
      await ssm?.send(
        new DeleteParametersCommand({ Names: [`${prefix}/PLAIN`, `${prefix}/secure/TOKEN`] }),
      );
    } finally {
      kms?.destroy();
      ssm?.destroy();
    }
  });

  it('round-trips an envelope through KMS and refuses another context', async () => {
    const cipher = createEnvelopeCipher({ provider: createKmsKeyProvider({ kms, keyId: keyArn }) });
    const envelope = await cipher.encrypt('ghp_localstack_secret_value', alice);
    await expect(cipher.decrypt(envelope, alice)).resolves.toBe('ghp_localstack_secret_value');
    await expect(cipher.decrypt(envelope, bob)).rejects.toBeInstanceOf(DecryptionError);
  });

  it('loads String and SecureString parameters under a path', async () => {
    await ssm.send(
      new PutParameterCommand({ Name: `${prefix}/PLAIN`, Value: 'plain', Type: 'String' }),
    );
    await ssm.send(
      new PutParameterCommand({
        Name: `${prefix}/secure/TOKEN`,
        Value: 'secure',
        Type: 'SecureString',
      }),
    );
    await expect(loadParametersByPath({ ssm, path: prefix })).resolves.toEqual({
      PLAIN: 'plain',
      'secure/TOKEN': 'secure',
    });
  });
});
