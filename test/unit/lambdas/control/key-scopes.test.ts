// The scope comparison and the answers that need no upstream; the checks that
// ask GitHub run against a fake one in test/integration/lambdas/routes/keys.test.ts.
import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../../../core/logger.js';
import { checkKeyScopes, missingGithubScopes } from '../../../../lambdas/control/key-scopes.js';

const options = {
  upstreamOverrides: { github: 'http://127.0.0.1:9' },
  timeoutMs: 0,
  logger: createLogger({ level: 'silent', name: 'key-scopes-test' }),
};

describe('missingGithubScopes', () => {
  /** @see https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/scopes-for-oauth-apps */
  it('counts a scope granted directly or implied by its parent in GitHub’s hierarchy', () => {
    expect(missingGithubScopes(['repo', 'read:user'], ['repo', 'read:user'])).toEqual([]);
    expect(missingGithubScopes(['repo', 'read:user'], ['repo', 'user'])).toEqual([]);
    expect(missingGithubScopes(['public_repo', 'read:org'], ['repo', 'admin:org'])).toEqual([]);
    expect(missingGithubScopes(['read:org'], ['write:org'])).toEqual([]);
  });

  it('lists what is missing, in the order required, and never takes a child for its parent', () => {
    expect(missingGithubScopes(['repo', 'read:user'], ['public_repo'])).toEqual([
      'repo',
      'read:user',
    ]);
    expect(missingGithubScopes(['repo', 'read:user'], [])).toEqual(['repo', 'read:user']);
    expect(missingGithubScopes(['user'], ['read:user'])).toEqual(['user']);
  });
});

describe('checkKeyScopes without an upstream call', () => {
  it('says a type without required scopes has nothing to check', async () => {
    expect(await checkKeyScopes({ name: 'demo', required_scopes: [] }, 'k', options)).toEqual({
      checked: false,
      required: [],
      granted: null,
      missing: [],
      reason: 'not checked: type demo lists no required scopes',
      warnings: [],
    });
    expect(
      (await checkKeyScopes({ name: 'custom', required_scopes: null }, 'k', options)).reason,
    ).toBe('not checked: type custom lists no required scopes');
  });

  it('says an admin-registered type’s upstream cannot be asked', async () => {
    const result = await checkKeyScopes({ name: 'slack', required_scopes: ['chat:write'] }, 'k', {
      ...options,
      timeoutMs: 3000,
    });
    expect(result).toMatchObject({ checked: false, required: ['chat:write'], warnings: [] });
    expect(result.reason).toBe(
      "not checked: MiniMCP cannot ask the upstream of type slack for a key's scopes",
    );
  });

  it('asks no one when the operator set the timeout to 0', async () => {
    const result = await checkKeyScopes(
      { name: 'github', required_scopes: ['repo'] },
      'ghp_x',
      options,
    );
    expect(result.reason).toBe('not checked: the operator turned the scope check off');
  });
});
