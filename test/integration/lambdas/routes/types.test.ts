// MCP types over real HTTP: public reads for everyone, registration and
// changes by admins, and a clear 400 for anything that would not run.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { findTypeByName } from '../../../../core/db/mcp-types.js';
import {
  expectProblem,
  startTestApi,
  type TestApi,
  type TestUserWithToken,
} from '../../../support/api.js';

let api: TestApi;
let user: TestUserWithToken;
let admin: TestUserWithToken;

beforeAll(async () => {
  api = await startTestApi();
  user = await api.createUserWithToken();
  admin = await api.createUserWithToken({ role: 'admin' });
});
afterAll(async () => {
  await api?.close();
});

const PRIVATE_FIELDS = ['command', 'args', 'env_mapping', 'server_script'];

function register(json: Record<string, unknown>, token = api.adminToken) {
  return api.request('POST', '/v1/types', { token, json });
}

describe('GET /v1/types and /v1/types/{name}', () => {
  it('lists the seeded types with public fields only', async () => {
    const response = await api.request('GET', '/v1/types', { token: user.token });
    expect(response.status).toBe(200);
    const { types } = response.json<{ types: Record<string, unknown>[] }>();
    expect(types.map((t) => t.name)).toEqual(['demo', 'figma', 'github', 'gmail']);
    for (const type of types) {
      for (const field of PRIVATE_FIELDS) expect(type).not.toHaveProperty(field);
    }
    expect(types.find((t) => t.name === 'github')).toMatchObject({
      display_name: 'GitHub MCP',
      requires_key: true,
      required_scopes: ['repo', 'read:user'],
      max_duration_minutes: 60,
      is_active: true,
    });
  });

  it('reads one type by name, public fields only', async () => {
    const response = await api.request('GET', '/v1/types/demo', { token: user.token });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ name: 'demo', requires_key: false, key_pattern: null });
    expect(Object.keys(response.json()).some((k) => PRIVATE_FIELDS.includes(k))).toBe(false);
  });

  it('answers 404 for an unknown type and 400 for an impossible name', async () => {
    expectProblem(
      await api.request('GET', '/v1/types/slack', { token: user.token }),
      404,
      'not-found',
    );
    expectProblem(
      await api.request('GET', '/v1/types/UPPER', { token: user.token }),
      400,
      'validation-failed',
    );
  });

  it('needs a token', async () => {
    expectProblem(await api.request('GET', '/v1/types'), 401, 'unauthenticated');
  });
});

describe('POST /v1/types', () => {
  const everything = {
    name: 'everything',
    display_name: 'Everything',
    description: 'The reference server with every MCP feature.',
    icon_url: 'https://example.test/icon.png',
    command: 'npx',
    args: ['@modelcontextprotocol/server-everything', 'stdio'],
    env_mapping: { EVERYTHING_TOKEN: '{{key}}' },
    requires_key: true,
    key_pattern: '^ev_[a-z0-9]{8,}$',
    config_template: { mode: 'full' },
    config_schema: { type: 'object', properties: { mode: { type: 'string' } } },
    required_scopes: ['read'],
    resource_limits: { cpu: '0.25', memory: '256m' },
    max_duration_minutes: 30,
  };

  it('registers any stdio command for an admin and answers with the admin view', async () => {
    const response = await register(everything);
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      ...everything,
      is_active: true,
      server_script: null,
    });
    const row = await findTypeByName(api.db.owner, 'everything');
    expect(row).toMatchObject({ command: 'npx', env_mapping: { EVERYTHING_TOKEN: '{{key}}' } });

    // Users see it, without its command, and keys are checked against its pattern.
    const read = await api.request('GET', '/v1/types/everything', { token: user.token });
    expect(read.status).toBe(200);
    expect(read.json()).not.toHaveProperty('command');
    const badKey = await api.request('PUT', '/v1/keys/everything', {
      token: user.token,
      json: { key: 'nope' },
    });
    expectProblem(badKey, 400, 'validation-failed');
    expect(
      (
        await api.request('PUT', '/v1/keys/everything', {
          token: user.token,
          json: { key: 'ev_12345678' },
        })
      ).status,
    ).toBe(200);
  });

  it('fills defaults for the optional fields', async () => {
    const response = await register(
      { name: 'minimal', display_name: 'Minimal', command: '/usr/bin/env' },
      admin.token,
    );
    expect(response.status).toBe(201);
    expect(response.body).toMatchObject({
      args: [],
      env_mapping: {},
      requires_key: true,
      key_pattern: null,
      config_template: {},
      config_schema: null,
      required_scopes: [],
      resource_limits: { cpu: '0.5', memory: '512m' },
      max_duration_minutes: 60,
      is_active: true,
    });
  });

  it('answers 409 for a name already taken', async () => {
    const response = await register({ name: 'github', display_name: 'Again', command: 'node' });
    expectProblem(response, 409, 'conflict');
    expect(response.json<{ detail: string }>().detail).toBe('MCP type "github" already exists');
  });

  it.each([
    ['a key pattern that does not compile', { key_pattern: '([a-z' }, 'body.key_pattern'],
    ['a bad name', { name: '9lives' }, 'body.name'],
    [
      'an env variable name with a dash',
      { env_mapping: { 'MY-TOKEN': '{{key}}' } },
      'body.env_mapping.MY-TOKEN',
    ],
    ['a duration above a year', { max_duration_minutes: 525601 }, 'body.max_duration_minutes'],
    [
      'a memory limit in words',
      { resource_limits: { memory: 'lots' } },
      'body.resource_limits.memory',
    ],
    ['an unknown resource limit', { resource_limits: { gpu: '1' } }, 'body.resource_limits'],
    ['args that are not strings', { args: ['--port', 80] }, 'body.args.1'],
    ['an unknown field', { server_script: './x.js' }, 'body'],
    ['a missing command', { command: undefined }, 'body.command'],
  ])('refuses %s with 400 naming the field', async (_what, change, field) => {
    const response = await register({
      name: 'broken',
      display_name: 'Broken',
      command: 'node',
      ...change,
    });
    expectProblem(response, 400, 'validation-failed');
    expect(response.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toContain(
      field,
    );
  });

  it('is for admins only', async () => {
    expectProblem(
      await register({ name: 'mine', display_name: 'Mine', command: 'node' }, user.token),
      403,
      'forbidden',
    );
  });
});

describe('PATCH /v1/types/{name}', () => {
  it('changes the given fields only', async () => {
    await register({ name: 'patchme', display_name: 'Patch me', command: 'node', args: ['a.js'] });
    const response = await api.request('PATCH', '/v1/types/patchme', {
      token: api.adminToken,
      json: { args: ['b.js', '--stdio'], max_duration_minutes: 15, key_pattern: '^k_' },
    });
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      display_name: 'Patch me',
      command: 'node',
      args: ['b.js', '--stdio'],
      max_duration_minutes: 15,
      key_pattern: '^k_',
    });
    const cleared = await api.request('PATCH', '/v1/types/patchme', {
      token: admin.token,
      json: { key_pattern: null, description: null },
    });
    expect(cleared.json()).toMatchObject({ key_pattern: null, description: null });
  });

  it('hides a deactivated type from users but not from admins', async () => {
    await register({ name: 'retiring', display_name: 'Retiring', command: 'node' });
    await api.request('PATCH', '/v1/types/retiring', {
      token: api.adminToken,
      json: { is_active: false },
    });
    expectProblem(
      await api.request('GET', '/v1/types/retiring', { token: user.token }),
      404,
      'not-found',
    );
    const list = await api.request('GET', '/v1/types', { token: user.token });
    expect(list.text).not.toContain('"retiring"');
    const asAdmin = await api.request('GET', '/v1/types/retiring', { token: admin.token });
    expect(asAdmin.json()).toMatchObject({ name: 'retiring', is_active: false });
    const adminList = await api.request('GET', '/v1/types', { token: admin.token });
    expect(adminList.text).toContain('"retiring"');
    expectProblem(
      await api.request('PUT', '/v1/keys/retiring', { token: user.token, json: { key: 'k' } }),
      404,
      'not-found',
    );
  });

  it('refuses an empty change, a rename and an unknown type', async () => {
    expectProblem(
      await api.request('PATCH', '/v1/types/github', { token: api.adminToken, json: {} }),
      400,
      'validation-failed',
    );
    expectProblem(
      await api.request('PATCH', '/v1/types/github', {
        token: api.adminToken,
        json: { name: 'gh' },
      }),
      400,
      'validation-failed',
    );
    expectProblem(
      await api.request('PATCH', '/v1/types/slack', {
        token: api.adminToken,
        json: { is_active: false },
      }),
      404,
      'not-found',
    );
  });

  it('is for admins only', async () => {
    expectProblem(
      await api.request('PATCH', '/v1/types/github', {
        token: user.token,
        json: { is_active: false },
      }),
      403,
      'forbidden',
    );
  });
});
