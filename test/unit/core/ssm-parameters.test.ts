// loadParametersByPath against a mocked SSM client: every page, decrypted,
// recursive, names relative to the path, failures named.
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  GetParametersByPathCommand,
  SSMClient,
  type GetParametersByPathCommandInput,
} from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { loadParametersByPath } from '../../../core/ssm-parameters.js';

/** The error a promise rejects with; fails the test when it resolves. */
async function rejectionOf(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error('expected a rejection, but the promise resolved');
    },
    (error: unknown) => error as Error,
  );
}

const ssmMock = mockClient(SSMClient);
afterEach(() => {
  ssmMock.reset();
});

describe('loadParametersByPath', () => {
  it('follows NextToken through every page, recursive and decrypted', async () => {
    const inputs: GetParametersByPathCommandInput[] = [];
    const pages: Record<string, { names: string[]; next?: string }> = {
      first: { names: ['/minimcp/prod/DATABASE_URL', '/minimcp/prod/db/replica'], next: 't1' },
      t1: { names: ['/minimcp/prod/MINIMCP_ADMIN_TOKEN'], next: 't2' },
      t2: { names: [] },
    };
    ssmMock.on(GetParametersByPathCommand).callsFake((input: GetParametersByPathCommandInput) => {
      inputs.push(input);
      const page = pages[input.NextToken ?? 'first']!;
      return {
        Parameters: page.names.map((Name) => ({ Name, Value: `value of ${Name}` })),
        NextToken: page.next,
      };
    });

    const parameters = await loadParametersByPath({
      ssm: new SSMClient({ region: 'us-east-1' }),
      path: '/minimcp/prod/',
    });

    expect(parameters).toEqual({
      DATABASE_URL: 'value of /minimcp/prod/DATABASE_URL',
      'db/replica': 'value of /minimcp/prod/db/replica',
      MINIMCP_ADMIN_TOKEN: 'value of /minimcp/prod/MINIMCP_ADMIN_TOKEN',
    });
    expect(inputs).toEqual([
      { Path: '/minimcp/prod', Recursive: true, WithDecryption: true },
      { Path: '/minimcp/prod', Recursive: true, WithDecryption: true, NextToken: 't1' },
      { Path: '/minimcp/prod', Recursive: true, WithDecryption: true, NextToken: 't2' },
    ]);
  });

  it('returns an empty object when nothing is stored under the path', async () => {
    ssmMock.on(GetParametersByPathCommand).resolves({});
    await expect(
      loadParametersByPath({ ssm: new SSMClient({ region: 'us-east-1' }), path: 'minimcp' }),
    ).resolves.toEqual({});
    expect(ssmMock.commandCalls(GetParametersByPathCommand)[0]!.args[0].input.Path).toBe(
      '/minimcp',
    );
  });

  it('names the path and the AWS error when SSM refuses, keeping the cause', async () => {
    const denied = Object.assign(new Error('User is not authorized'), {
      name: 'AccessDeniedException',
    });
    ssmMock.on(GetParametersByPathCommand).rejects(denied);
    const error = await rejectionOf(
      loadParametersByPath({
        ssm: new SSMClient({ region: 'us-east-1' }),
        path: '/minimcp/prod',
      }),
    );
    expect(error.message).toContain('/minimcp/prod');
    expect(error.message).toContain('AccessDeniedException');
    expect(error.cause).toBe(denied);
  });
});
