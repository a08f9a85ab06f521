// Thousands of malformed requests over real HTTP: random methods, paths, ids,
// headers (some too large), content types and bodies (random JSON, fields of
// the real schemas with wrong values, unknown fields, broken JSON, oversize).
// The API must never answer 5xx, and every error must be problem+json.
// MINIMCP_FUZZ_RUNS sets the number of requests (default 2,000).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PROBLEM_TYPE_BASE } from '../../../lambdas/problem.js';
import { startTestApi, type TestApi, type TestUserWithToken } from '../../support/api.js';

const RUNS = Number(process.env.MINIMCP_FUZZ_RUNS ?? 2000);
const USER_EMAIL = 'fuzz-user@example.test';
const MAX_BODY = 8192;

let api: TestApi;
let user: TestUserWithToken;

beforeAll(async () => {
  api = await startTestApi({
    env: { MINIMCP_MAX_BODY_BYTES: String(MAX_BODY), LOG_LEVEL: 'warn' },
  });
  user = await api.createUserWithToken({ email: USER_EMAIL });
});
afterAll(async () => {
  await api?.close();
});

const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '%',
    '%ZZ',
    '..',
    'null',
    '0',
    '-1',
    '\u0000',
    'é',
    '😀',
    'a'.repeat(300),
  ),
);

const idLike = fc.oneof(
  fc.uuid(),
  text,
  fc.constantFrom(
    '00000000-0000-0000-0000-000000000000',
    'github',
    'demo',
    'figma',
    'GitHub',
    'a_b-c',
  ),
);

const segment = idLike.map((s) => encodeURIComponent(s));

const path = fc.oneof(
  fc.constantFrom(
    '/v1/health',
    '/v1/openapi.json',
    '/v1/auth/token',
    '/v1/tokens',
    '/v1/users',
    '/v1/me',
    '/v1/keys',
    '/v1/types',
    '/v1/nodes',
    '/',
    '/v1',
    '/v1/',
  ),
  segment.map((s) => `/v1/tokens/${s}`),
  segment.map((s) => `/v1/keys/${s}`),
  segment.map((s) => `/v1/types/${s}`),
  segment.map((s) => `/v1/users/${s}/deactivate`),
  fc.array(segment, { minLength: 1, maxLength: 5 }).map((parts) => `/${parts.join('/')}`),
);

const method = fc.constantFrom(
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'PROPFIND',
  'FOO',
  'patch',
);

const FIELDS = [
  'email',
  'password',
  'name',
  'expires_in_days',
  'key',
  'expires_at',
  'role',
  'display_name',
  'description',
  'icon_url',
  'command',
  'args',
  'env_mapping',
  'requires_key',
  'key_pattern',
  'config_template',
  'config_schema',
  'required_scopes',
  'resource_limits',
  'max_duration_minutes',
  'is_active',
];

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  text,
  fc.constantFrom(
    'fuzz@example.test',
    USER_EMAIL,
    'a-password-long-enough',
    `ghp_${'a'.repeat(36)}`,
    '2030-01-01T00:00:00Z',
    '2020-01-01T00:00:00Z',
    '([a-z',
    '^x$',
    'admin',
    'user',
    { cpu: '0.5', memory: '512m' },
    { 'BAD-NAME': '{{key}}' },
    ['a', 1],
    1e308,
    -0,
    2 ** 53,
  ),
);

const schemaShapedBody = fc
  .dictionary(fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 10 })), fieldValue, {
    maxKeys: 6,
  })
  .map((value) => JSON.stringify(value));

const body = fc.oneof(
  fc.constant(undefined),
  schemaShapedBody,
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  fc.string({ maxLength: 60 }),
  fc.constantFrom(
    '{',
    '{"name":',
    '[1,2',
    '{"a":1}}',
    'null',
    '""',
    '\u0000',
    '{"name":"\\u0000"}',
  ),
  fc.integer({ min: MAX_BODY + 1, max: MAX_BODY * 4 }).map((n) => `{"name":"${'x'.repeat(n)}"}`),
  fc.integer({ min: 33, max: 2000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
);

const contentType = fc.oneof(
  fc.constantFrom(
    undefined,
    'application/json',
    'application/json; charset=utf-8',
    'APPLICATION/JSON',
    'application/merge-patch+json',
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/jsonx',
    'json',
  ),
  fc.stringMatching(/^[a-z]{1,8}\/[a-z+.-]{1,12}$/),
);

const authorization = fc.oneof(
  fc.constant('user'),
  fc.constant('admin'),
  fc.constant(undefined),
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    'Basic Zm9vOmJhcg==',
    'Bearer mmu_',
    'Bearer mcp_x',
    'bearer   x',
  ),
  fc.stringMatching(/^Bearer [A-Za-z0-9._~+/=-]{0,80}$/),
);

const headerToken = fc.stringMatching(/^[\x21-\x7e]{0,60}$/);

const extraHeaders = fc.record(
  {
    'x-request-id': fc.oneof(headerToken, fc.constant('x'.repeat(200))),
    // Node refuses headers over 16 KiB before the app runs: that answer is ours too (431).
    'x-padding': fc
      .oneof(
        { weight: 6, arbitrary: fc.constantFrom(100, 4_000, 12_000) },
        { weight: 1, arbitrary: fc.constant(40_000) },
      )
      .map((n) => 'p'.repeat(n)),
    accept: fc.constantFrom('application/json', '*/*', 'text/html'),
  },
  { requiredKeys: [] },
);

/** Anything at all. */
const wild = fc.record({ method, path, body, contentType, authorization, extraHeaders });

const ROUTES: [string, string][] = [
  ['GET', '/v1/health'],
  ['GET', '/v1/openapi.json'],
  ['POST', '/v1/auth/token'],
  ['POST', '/v1/tokens'],
  ['GET', '/v1/tokens'],
  ['DELETE', '/v1/tokens/{}'],
  ['POST', '/v1/users'],
  ['GET', '/v1/users'],
  ['POST', '/v1/users/{}/deactivate'],
  ['GET', '/v1/me'],
  ['PUT', '/v1/keys/{}'],
  ['GET', '/v1/keys'],
  ['DELETE', '/v1/keys/{}'],
  ['GET', '/v1/types'],
  ['GET', '/v1/types/{}'],
  ['POST', '/v1/types'],
  ['PATCH', '/v1/types/{}'],
  ['GET', '/v1/nodes'],
];

/** A real route and method, mostly authenticated, with a JSON body of the real fields: gets past the front door. */
const routed = fc
  .record({
    route: fc.constantFrom(...ROUTES),
    param: segment,
    body: fc.oneof({ weight: 4, arbitrary: schemaShapedBody }, { weight: 1, arbitrary: body }),
    contentType: fc.oneof(
      { weight: 4, arbitrary: fc.constant('application/json') },
      { weight: 1, arbitrary: contentType },
    ),
    authorization: fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom('user', 'admin') },
      { weight: 1, arbitrary: authorization },
    ),
  })
  .map(({ route: [routeMethod, template], param, ...rest }) => ({
    ...rest,
    method: routeMethod,
    path: template.replace('{}', param),
    extraHeaders: {},
  }));

const request = fc.oneof({ weight: 3, arbitrary: routed }, { weight: 2, arbitrary: wild });
type FuzzRequest = typeof request extends fc.Arbitrary<infer T> ? T : never;

async function send(r: FuzzRequest) {
  const headers: Record<string, string> = { ...r.extraHeaders };
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.authorization === 'user') headers.authorization = `Bearer ${user.token}`;
  else if (r.authorization === 'admin') headers.authorization = `Bearer ${api.adminToken}`;
  else if (r.authorization !== undefined) headers.authorization = r.authorization;
  const withBody = r.body !== undefined && !['GET', 'HEAD'].includes(r.method);
  const response = await fetch(api.url + r.path, {
    method: r.method,
    headers,
    ...(withBody ? { body: r.body } : {}),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('the API under malformed input', () => {
  it(`never answers 5xx and always explains errors as problem+json (${RUNS} requests)`, async () => {
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const response = await send(r);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        expect(response.status).toBeLessThan(500);
        if (response.status < 400) return;
        expect(response.headers.get('content-type')).toBe('application/problem+json');
        if (r.method === 'HEAD') return;
        const problem = JSON.parse(response.text) as Record<string, unknown>;
        expect(problem).toMatchObject({
          type: expect.stringMatching(new RegExp(`^${PROBLEM_TYPE_BASE}[a-z-]+$`)),
          title: expect.any(String),
          status: response.status,
          detail: expect.any(String),
          request_id: response.headers.get('x-request-id'),
        });
        expect(response.text).not.toMatch(/\n\s+at |SELECT |INSERT INTO|UPDATE \w+ SET/);
      }),
      { numRuns: RUNS, endOnFailure: true },
    );
    // The run reached past validation, not only the front door.
    const seen = [...statuses.keys()];
    expect(seen).toEqual(expect.arrayContaining([200, 400, 401, 403, 404, 405, 413, 415, 431]));
    // And the API is still healthy afterwards.
    expect((await fetch(`${api.url}/v1/health`)).status).toBe(200);
    expect(
      (await fetch(`${api.url}/v1/me`, { headers: { authorization: `Bearer ${user.token}` } }))
        .status,
    ).toBe(200);
  });
});
