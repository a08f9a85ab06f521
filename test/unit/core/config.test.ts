// Configuration from the environment, and on AWS from SSM parameters too.
import { afterEach, describe, expect, it } from '@jest/globals';
import { GetParametersByPathCommand, SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import {
  ApiConfigSchema,
  apiConfig,
  ConfigError,
  coreConfig,
  loadConfig,
  parseConfig,
} from '../../../core/config.js';

const DATABASE_URL = 'postgres://minimcp:db-password@127.0.0.1:5432/minimcp';

describe('parseConfig', () => {
  it('fills the defaults that make the local stack work', () => {
    const config = parseConfig(ApiConfigSchema, { DATABASE_URL });
    expect(config).toMatchObject({
      DATABASE_URL,
      MINIMCP_API_PORT: 8080,
      MINIMCP_API_HOST: '127.0.0.1',
      MINIMCP_DATA_DIR: '.minimcp',
      LOG_LEVEL: 'info',
      MINIMCP_MAX_BODY_BYTES: 65536,
      MINIMCP_AUTH_RATE_BURST: 5,
      MINIMCP_AUTH_RATE_REFILL_SECONDS: 12,
      MINIMCP_DB_POOL_SIZE: 10,
    });
    expect(config.MINIMCP_ADMIN_TOKEN).toBeUndefined();
    expect(config.MINIMCP_SSM_PREFIX).toBeUndefined();
  });

  it('coerces numbers and treats empty variables as unset', () => {
    const config = parseConfig(ApiConfigSchema, {
      DATABASE_URL,
      MINIMCP_API_PORT: '9090',
      MINIMCP_ADMIN_TOKEN: '',
      MINIMCP_MAX_BODY_BYTES: '2048',
    });
    expect(config.MINIMCP_API_PORT).toBe(9090);
    expect(config.MINIMCP_MAX_BODY_BYTES).toBe(2048);
    expect(config.MINIMCP_ADMIN_TOKEN).toBeUndefined();
  });

  it('names every bad setting and its value, but never the value of a secret', () => {
    let error: unknown;
    try {
      parseConfig(ApiConfigSchema, {
        DATABASE_URL: 'mysql://root:db-secret@host/db',
        MINIMCP_API_PORT: 'eighty',
        MINIMCP_ADMIN_TOKEN: 'short-admin-secret',
        LOG_LEVEL: 'loud',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('MINIMCP_API_PORT');
    expect(message).toContain('"eighty"');
    expect(message).toContain('LOG_LEVEL');
    expect(message).toContain('DATABASE_URL');
    expect(message).toContain('MINIMCP_ADMIN_TOKEN');
    expect(message).not.toContain('db-secret');
    expect(message).not.toContain('short-admin-secret');
    expect((error as ConfigError).issues).toHaveLength(4);
  });

  it('says when a required setting is missing', () => {
    expect(() => parseConfig(ApiConfigSchema, {})).toThrow(/DATABASE_URL.*not set/);
  });

  it('documents every setting (the README table is generated from these descriptions)', () => {
    for (const [name, schema] of Object.entries({ ...coreConfig.shape, ...apiConfig.shape })) {
      expect({ name, description: schema.description }).toEqual({
        name,
        description: expect.stringMatching(/\w{3,}/),
      });
    }
  });
});

describe('loadConfig', () => {
  const ssm = mockClient(SSMClient);
  afterEach(() => {
    ssm.reset();
  });

  it('reads only the environment when no SSM prefix is set', async () => {
    let called = false;
    const config = await loadConfig(
      ApiConfigSchema,
      { DATABASE_URL },
      {
        loadParameters: async () => {
          called = true;
          return {};
        },
      },
    );
    expect(called).toBe(false);
    expect(config.DATABASE_URL).toBe(DATABASE_URL);
  });

  it('merges the parameters under the prefix, named by their last segment; the environment wins', async () => {
    const paths: string[] = [];
    const config = await loadConfig(
      ApiConfigSchema,
      { MINIMCP_SSM_PREFIX: '/minimcp/prod', MINIMCP_API_PORT: '9000' },
      {
        loadParameters: async (path) => {
          paths.push(path);
          return {
            DATABASE_URL,
            MINIMCP_ADMIN_TOKEN: 'an-admin-token-from-ssm-0123456789',
            MINIMCP_API_PORT: '7000',
            'nested/LOG_LEVEL': 'debug',
          };
        },
      },
    );
    expect(paths).toEqual(['/minimcp/prod']);
    expect(config).toMatchObject({
      DATABASE_URL,
      MINIMCP_ADMIN_TOKEN: 'an-admin-token-from-ssm-0123456789',
      MINIMCP_API_PORT: 9000,
      LOG_LEVEL: 'debug',
    });
  });

  it('loads through SSM GetParametersByPath, recursive and decrypted, following pages', async () => {
    ssm
      .on(GetParametersByPathCommand)
      .callsFake((input: { NextToken?: string; Path?: string; WithDecryption?: boolean }) => {
        expect(input).toMatchObject({ Path: '/minimcp/test', WithDecryption: true });
        return input.NextToken
          ? {
              Parameters: [
                {
                  Name: '/minimcp/test/MINIMCP_ADMIN_TOKEN',
                  Value: 'token-from-ssm-page-two-0000',
                },
              ],
            }
          : {
              Parameters: [{ Name: '/minimcp/test/DATABASE_URL', Value: DATABASE_URL }],
              NextToken: 'page-2',
            };
      });
    const config = await loadConfig(ApiConfigSchema, {
      MINIMCP_SSM_PREFIX: '/minimcp/test',
      AWS_REGION: 'eu-west-1',
    });
    expect(config.DATABASE_URL).toBe(DATABASE_URL);
    expect(config.MINIMCP_ADMIN_TOKEN).toBe('token-from-ssm-page-two-0000');
    expect(ssm.commandCalls(GetParametersByPathCommand)).toHaveLength(2);
  });

  it('fails with a ConfigError naming the path when SSM cannot be read', async () => {
    ssm
      .on(GetParametersByPathCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    await expect(
      loadConfig(ApiConfigSchema, { MINIMCP_SSM_PREFIX: '/minimcp/x', AWS_REGION: 'eu-west-1' }),
    ).rejects.toThrow(/could not load SSM parameters under \/minimcp\/x/);
  });
});
