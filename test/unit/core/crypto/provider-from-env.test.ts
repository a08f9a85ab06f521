// Which key provider the configuration selects.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createKeyProviderFromEnv } from '../../../../core/crypto/provider-from-env.js';

describe('createKeyProviderFromEnv', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-provider-env-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('selects KMS when KMS_KEY_ID is set, whatever else is set', async () => {
    const provider = await createKeyProviderFromEnv({
      KMS_KEY_ID: 'alias/minimcp',
      AWS_REGION: 'eu-west-1',
      MINIMCP_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    expect(provider.name).toBe('aws-kms');
    expect(provider.masterKeyId).toBe('alias/minimcp');
  });

  it('selects the local provider with MINIMCP_MASTER_KEY', async () => {
    const provider = await createKeyProviderFromEnv({
      MINIMCP_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    expect(provider.name).toBe('local');
  });

  it('selects the local provider with a key file created 0600 at MINIMCP_MASTER_KEY_FILE', async () => {
    const file = path.join(dir, 'master.key');
    const provider = await createKeyProviderFromEnv({
      MINIMCP_MASTER_KEY_FILE: file,
      KMS_KEY_ID: '',
    });
    expect(provider.name).toBe('local');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses MINIMCP_MASTER_KEY and MINIMCP_MASTER_KEY_FILE together', async () => {
    await expect(
      createKeyProviderFromEnv({
        MINIMCP_MASTER_KEY: randomBytes(32).toString('base64'),
        MINIMCP_MASTER_KEY_FILE: path.join(dir, 'other.key'),
      }),
    ).rejects.toThrow(/not both/);
  });
});
