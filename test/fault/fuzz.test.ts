// Thousands of malformed requests over real HTTP against the whole stack (the
// API with its instance service and a real host agent): random methods, paths,
// ids, query strings, headers (some too large), content types and bodies
// (random JSON, fields of the real schemas with wrong values, unknown fields,
// broken JSON, oversize). The routes, their query parameters and the body
// fields come from the OpenAPI document, so a new route is fuzzed the day it
// is added. The API must never answer 5xx, and every error must be
// problem+json. MINIMCP_FUZZ_RUNS sets the number of requests (default 10,000).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PROBLEM_TYPE_BASE } from '../../lambdas/problem.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFaultStack, type FaultStack, type FaultUser } from '../support/fault-stack.js';
import {
  listOperations,
  minimalValue,
  pathParameters,
  type JsonSchema,
  type OpenApiDocument,
} from '../support/openapi-sample.js';

const RUNS = Number(process.env.MINIMCP_FUZZ_RUNS ?? 10_000);
const MAX_BODY = 8192;

let db: TestDatabase;
let stack: FaultStack;
let user: FaultUser;
let doc: OpenApiDocument;
/** Ids of real rows the fuzzer may hit (the user's own instance, the node). */
let realIds: string[];

beforeAll(async () => {
  db = await createTestDatabase();
  stack = await startFaultStack({
    appUrl: db.appUrl,
    agentUrl: db.agentUrl,
    logLevel: 'warn',
    apiEnv: { MINIMCP_MAX_BODY_BYTES: String(MAX_BODY) },
  });
  user = await stack.createUser();
  doc = (await (await fetch(`${stack.apiUrl}/v1/openapi.json`)).json()) as OpenApiDocument;
  const created = await stack.request('POST', '/v1/instances', {
    token: user.token,
    json: { type: 'demo' },
  });
  if (created.status !== 201) throw new Error(`POST /v1/instances: ${created.text}`);
  realIds = [(created.body as { id: string }).id, stack.agent.node.id];
}, 120_000);
afterAll(async () => {
  await stack?.close();
  await db?.drop();
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
    '/v1/instances',
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

const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  text,
  fc.constantFrom(
    'fuzz@example.test',
    'fuzz-user@example.test',
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

/** Every property name any schema of the document declares: bodies built from them get past parsing. */
function fieldsOf(document: OpenApiDocument): string[] {
  const names = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    const properties = (value as { properties?: unknown }).properties;
    if (properties && typeof properties === 'object')
      for (const name of Object.keys(properties)) names.add(name);
    Object.values(value).forEach(visit);
  };
  visit(document);
  return [...names].sort();
}

function bodies(fields: string[]) {
  const schemaShapedBody = fc
    .dictionary(fc.oneof(fc.constantFrom(...fields), fc.string({ maxLength: 10 })), fieldValue, {
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
  return { schemaShapedBody, body };
}

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

/** A query string for an operation's query parameters: valid samples, wrong values, unknown names. */
function queryFor(parameters: { name: string; schema?: JsonSchema }[]) {
  const value = (schema: JsonSchema | undefined) =>
    fc.oneof(fc.constant(String(minimalValue(schema ?? {}, doc))), text, idLike);
  const pairs = fc.array(
    fc.oneof(
      ...(parameters.length > 0
        ? [fc.constantFrom(...parameters).chain((p) => value(p.schema).map((v) => [p.name, v]))]
        : []),
      fc.tuple(fc.string({ maxLength: 8 }), text),
    ),
    { maxLength: 4 },
  );
  return pairs.map((list) =>
    list.length === 0 ? '' : `?${new URLSearchParams(list as [string, string][])}`,
  );
}

function requestArbitrary(document: OpenApiDocument) {
  const { schemaShapedBody, body } = bodies(fieldsOf(document));
  /** Anything at all. */
  const wild = fc.record({ method, path, body, contentType, authorization, extraHeaders });
  const param = fc.oneof({ weight: 3, arbitrary: segment }, fc.constantFrom(...realIds));
  /** A real route and method of the document, mostly authenticated, with a JSON body of the real fields: gets past the front door. */
  const routed = fc.constantFrom(...listOperations(document)).chain((op) =>
    fc.record({
      method: fc.constant(op.method),
      path: fc
        .tuple(
          fc.array(param, {
            minLength: pathParameters(op.path).length,
            maxLength: pathParameters(op.path).length,
          }),
          queryFor((op.operation.parameters ?? []).filter((p) => p.in === 'query')),
        )
        .map(([values, query]) => {
          let url = op.path;
          for (const [i, name] of pathParameters(op.path).entries())
            url = url.replace(`{${name}}`, values[i]!);
          return url + query;
        }),
      body: fc.oneof({ weight: 4, arbitrary: schemaShapedBody }, { weight: 1, arbitrary: body }),
      contentType: fc.oneof(
        { weight: 4, arbitrary: fc.constant<string | undefined>('application/json') },
        { weight: 1, arbitrary: contentType },
      ),
      authorization: fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom<string | undefined>('user', 'admin') },
        { weight: 1, arbitrary: authorization },
      ),
      extraHeaders: fc.constant({}),
    }),
  );
  return fc.oneof({ weight: 3, arbitrary: routed }, { weight: 2, arbitrary: wild });
}
type FuzzRequest = ReturnType<typeof requestArbitrary> extends fc.Arbitrary<infer T> ? T : never;

async function send(r: FuzzRequest) {
  const headers: Record<string, string> = { ...r.extraHeaders };
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  if (r.authorization === 'user') headers.authorization = `Bearer ${user.token}`;
  else if (r.authorization === 'admin') headers.authorization = `Bearer ${stack.adminToken}`;
  else if (r.authorization !== undefined) headers.authorization = r.authorization;
  const withBody = r.body !== undefined && !['GET', 'HEAD'].includes(r.method);
  const response = await fetch(stack.apiUrl + r.path, {
    method: r.method,
    headers,
    ...(withBody ? { body: r.body } : {}),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

describe('the API under malformed input', () => {
  it(`never answers 5xx and always explains errors as problem+json (${RUNS} requests)`, async () => {
    const statuses = new Map<number, number>();
    let instanceRoutesAnswered = 0;
    await fc.assert(
      fc.asyncProperty(requestArbitrary(doc), async (r) => {
        const response = await send(r);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (r.path.startsWith('/v1/instances') && response.status < 300) instanceRoutesAnswered++;
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
    // Instance routes (agent calls behind them) were reached, not only refused.
    expect(instanceRoutesAnswered).toBeGreaterThan(0);
    // And the API is still healthy afterwards.
    expect((await fetch(`${stack.apiUrl}/v1/health`)).status).toBe(200);
    expect(
      (await fetch(`${stack.apiUrl}/v1/me`, { headers: { authorization: `Bearer ${user.token}` } }))
        .status,
    ).toBe(200);
  }, 1_800_000); // a budget, not a threshold: 10,000 requests on a loaded 2-core machine
});
