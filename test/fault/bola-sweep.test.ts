// BOLA sweep: every operation of the OpenAPI document whose path names a
// resource ({id}, {type}, {name}) is called with another user's token and
// the owner's resources, with a valid body built from its schema — so a new
// route is covered the day it is added. A normal user gets 404 (the resource
// is invisible, exactly as if it did not exist) or 403 on admin routes, never
// 2xx and never 5xx; afterwards the owner's resources are unchanged.
// @see https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { PROBLEM_TYPE_BASE } from '../../lambdas/problem.js';
import type { ApiResponse } from '../support/api.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFaultStack, type FaultStack, type FaultUser } from '../support/fault-stack.js';
import {
  listOperations,
  minimalValue,
  pathParameters,
  requiredBodySchema,
  type OpenApiDocument,
  type Operation,
} from '../support/openapi-sample.js';

const OWNER_KEY = `ghp_${'a'.repeat(36)}`;
/** A valid GitHub-shaped key: the type's key_pattern is not in the document. */
const OTHER_KEY = `ghp_${'b'.repeat(36)}`;

/** Routes the architecture names as admin-only; the document must mark each "(admin)". */
const ADMIN_ROUTES = [
  'GET /v1/users',
  'POST /v1/users',
  'POST /v1/users/{id}/deactivate',
  'DELETE /v1/users/{id}',
  'POST /v1/types',
  'PATCH /v1/types/{name}',
  'GET /v1/nodes',
  'GET /v1/settings',
  'PATCH /v1/settings/{key}',
];

/**
 * Routes whose path parameter names a shared catalogue entry, not someone's
 * resource. A user acting on them acts on their own row (or reads the public
 * catalogue); the sweep checks the owner's row is untouched instead.
 */
const CALLER_SCOPED = new Set(['PUT /v1/keys/{type}']);
const PUBLIC_READ = new Set(['GET /v1/types/{name}']);
/** Bodies the document cannot describe fully (a key must match its type's key_pattern). */
const BODY_OVERRIDES: Record<string, unknown> = { 'PUT /v1/keys/{type}': { key: OTHER_KEY } };

const isAdmin = (op: Operation) => /\(admin\)/i.test(op.operation.summary ?? '');

interface Outcome {
  route: string;
  status: number;
  type: string | undefined;
  problemJson: boolean;
}

function outcomeOf(route: string, response: ApiResponse): Outcome {
  const problemJson = response.headers.get('content-type') === 'application/problem+json';
  return {
    route,
    status: response.status,
    type: problemJson ? (response.body as { type?: string } | undefined)?.type : undefined,
    problemJson,
  };
}

describe('BOLA sweep', () => {
  let db: TestDatabase;
  let stack: FaultStack;
  let owner: FaultUser;
  let other: FaultUser;
  let instance: {
    id: string;
    access_url: string;
    access_token: string;
    token_prefix: string;
    expires_at: string;
  };
  let doc: OpenApiDocument;
  let operations: Operation[];
  let ownerKeyRow: unknown;

  const KeyRow = z.object({
    encrypted_key: z.string(),
    key_hint: z.string().nullable(),
    updated_at: z.date(),
  });
  const ownerKey = () =>
    db.owner.one(sql.type(KeyRow)`
      SELECT k.encrypted_key, k.key_hint, k.updated_at
      FROM api_keys k JOIN mcp_types t ON t.id = k.mcp_type_id
      WHERE k.user_id = ${owner.id} AND t.name = 'github'`);

  /** The owner's resource a path parameter names, by where the route lives. */
  const valueFor = (path: string, param: string): string | undefined => {
    const table: [RegExp, string, () => string][] = [
      [/^\/v1\/instances\/\{id\}/, 'id', () => instance.id],
      [/^\/v1\/tokens\/\{id\}/, 'id', () => owner.tokenId],
      [/^\/v1\/users\/\{id\}/, 'id', () => owner.id],
      [/^\/v1\/nodes\/\{id\}/, 'id', () => stack.agent.node.id],
      [/^\/v1\/keys\/\{type\}/, 'type', () => 'github'],
      [/^\/v1\/types\/\{name\}/, 'name', () => 'github'],
      [/^\/v1\/settings\/\{key\}/, 'key', () => 'cleanup.retention_days'],
    ];
    const hit = table.find(([pattern, name]) => pattern.test(path) && name === param);
    return hit?.[2]();
  };

  const urlOf = (op: Operation, values: Record<string, string>): string => {
    let url = op.path;
    for (const param of pathParameters(op.path)) url = url.replace(`{${param}}`, values[param]!);
    const query = (op.operation.parameters ?? []).filter((p) => p.in === 'query' && p.required);
    if (query.length > 0)
      url += `?${new URLSearchParams(
        query.map((p): [string, string] => [p.name, String(minimalValue(p.schema ?? {}, doc))]),
      )}`;
    return url;
  };

  const bodyOf = (op: Operation): unknown => {
    if (op.key in BODY_OVERRIDES) return BODY_OVERRIDES[op.key];
    const schema = requiredBodySchema(op.operation);
    return schema ? minimalValue(schema, doc) : undefined;
  };

  const call = (op: Operation, token: string, values: Record<string, string>) => {
    const json = bodyOf(op);
    return stack.request(op.method, urlOf(op, values), {
      token,
      ...(json !== undefined ? { json } : {}),
    });
  };

  const ownersValues = (op: Operation): Record<string, string> => {
    const values: Record<string, string> = {};
    for (const param of pathParameters(op.path)) {
      const value = valueFor(op.path, param);
      if (value === undefined)
        throw new Error(
          `${op.key}: the sweep does not know whose resource {${param}} names; add the route to valueFor`,
        );
      values[param] = value;
    }
    return values;
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    stack = await startFaultStack({ appUrl: db.appUrl, agentUrl: db.agentUrl, logLevel: 'warn' });
    owner = await stack.createUser();
    other = await stack.createUser();
    const stored = await stack.request('PUT', '/v1/keys/github', {
      token: owner.token,
      json: { key: OWNER_KEY },
    });
    expect(stored.status).toBe(200);
    ownerKeyRow = await ownerKey();
    const created = await stack.request('POST', '/v1/instances', {
      token: owner.token,
      json: { type: 'demo' },
    });
    expect(created.status).toBe(201);
    instance = created.json();
    const fetched = await stack.request('GET', '/v1/openapi.json');
    expect(fetched.status).toBe(200);
    doc = fetched.json<OpenApiDocument>();
    operations = listOperations(doc);
  });

  afterAll(async () => {
    await stack?.close();
    await db?.drop();
  });

  it('marks every admin route of the architecture "(admin)" in the document', () => {
    const marked = operations.filter(isAdmin).map((op) => op.key);
    expect(marked).toEqual(expect.arrayContaining(ADMIN_ROUTES));
  });

  it("answers another user 404 on every route that names the owner's resource, 403 on admin routes", async () => {
    const targeted = operations.filter((op) => pathParameters(op.path).length > 0);
    // Instances alone have seven such routes; a document that lost them is a failure too.
    expect(
      targeted.filter((op) => op.path.startsWith('/v1/instances/')).length,
    ).toBeGreaterThanOrEqual(7);
    // Routes that act on the caller's own rows go last, so the others see the caller without any.
    targeted.sort((a, b) => Number(CALLER_SCOPED.has(a.key)) - Number(CALLER_SCOPED.has(b.key)));

    const got: Outcome[] = [];
    const expected: Outcome[] = [];
    const sameAsMissing: { route: string; owned: unknown; missing: unknown }[] = [];
    for (const op of targeted) {
      const values = ownersValues(op);
      const response = await call(op, other.token, values);
      got.push(outcomeOf(op.key, response));
      if (isAdmin(op)) {
        expected.push({
          route: op.key,
          status: 403,
          type: `${PROBLEM_TYPE_BASE}forbidden`,
          problemJson: true,
        });
      } else if (CALLER_SCOPED.has(op.key) || PUBLIC_READ.has(op.key)) {
        expected.push({ route: op.key, status: 200, type: undefined, problemJson: false });
        // The public view of a type: never its command line or environment mapping.
        if (PUBLIC_READ.has(op.key))
          for (const field of ['command', 'args', 'env_mapping', 'server_script'])
            expect(response.json()).not.toHaveProperty(field);
      } else {
        expected.push({
          route: op.key,
          status: 404,
          type: `${PROBLEM_TYPE_BASE}not-found`,
          problemJson: true,
        });
        // Not even the shape of the answer tells "someone else's" from "no such one".
        if (pathParameters(op.path).includes('id')) {
          const missing = await call(op, other.token, { ...values, id: randomUUID() });
          const shape = (r: ApiResponse) => ({
            status: r.status,
            type: r.json<{ type?: string }>().type,
            title: r.json<{ title?: string }>().title,
          });
          sameAsMissing.push({ route: op.key, owned: shape(response), missing: shape(missing) });
        }
      }
    }
    expect(got).toEqual(expected);
    for (const { route, owned, missing } of sameAsMissing)
      expect({ route, owned }).toEqual({ route, owned: missing });
  });

  it('refuses a normal user on every admin route with 403', async () => {
    const admin = operations.filter(isAdmin);
    const got = await Promise.all(
      admin.map(async (op) => outcomeOf(op.key, await call(op, other.token, ownersValues(op)))),
    );
    expect(got).toEqual(
      admin.map((op) => ({
        route: op.key,
        status: 403,
        type: `${PROBLEM_TYPE_BASE}forbidden`,
        problemJson: true,
      })),
    );
  });

  it("shows another user none of the owner's resources in any list", async () => {
    const lists = operations.filter(
      (op) => op.method === 'GET' && pathParameters(op.path).length === 0 && !isAdmin(op),
    );
    const needles = [
      owner.id,
      owner.email,
      owner.tokenId,
      instance.id,
      instance.token_prefix,
      instance.access_url,
    ];
    for (const op of lists) {
      const response = await call(op, other.token, {});
      expect({ route: op.key, status: response.status }).toEqual({ route: op.key, status: 200 });
      for (const needle of needles)
        expect({ route: op.key, leaked: response.text.includes(needle) }).toEqual({
          route: op.key,
          leaked: false,
        });
    }
  });

  it('leaves the owner with everything, unchanged', async () => {
    // Every read route of the sweep works for the owner: the 404s were about ownership.
    for (const op of operations.filter(
      (o) => o.method === 'GET' && pathParameters(o.path).length > 0 && !isAdmin(o),
    )) {
      const response = await call(op, owner.token, ownersValues(op));
      expect({ route: op.key, status: response.status }).toEqual({ route: op.key, status: 200 });
    }
    const now = await stack.request('GET', `/v1/instances/${instance.id}`, { token: owner.token });
    expect(now.json()).toMatchObject({
      status: 'running',
      token_prefix: instance.token_prefix,
      expires_at: instance.expires_at,
    });
    const events = await stack.request('GET', `/v1/instances/${instance.id}/events`, {
      token: owner.token,
    });
    const types = events.json<{ events: { type: string }[] }>().events.map((e) => e.type);
    expect(types.sort()).toEqual(['created', 'started']);

    // The original access token still opens the instance.
    const client = await stack.connectMcp(instance.access_url, instance.access_token);
    const echoed = await client.callTool({ name: 'echo', arguments: { text: 'still mine' } });
    expect(echoed.structuredContent).toEqual({ text: 'still mine' });
    await client.close();

    // The owner's key, token and account, and the node, are as they were.
    expect(await ownerKey()).toEqual(ownerKeyRow);
    expect((await stack.request('GET', '/v1/me', { token: owner.token })).status).toBe(200);
    const state = await db.owner.one(
      sql.type(z.object({ user_active: z.boolean(), node_status: z.string() }))`
        SELECT (SELECT is_active FROM users WHERE id = ${owner.id}) AS user_active,
               (SELECT status FROM nodes WHERE id = ${stack.agent.node.id}) AS node_status`,
    );
    expect(state).toEqual({ user_active: true, node_status: 'active' });
    // What the caller-scoped route did, it did to the caller's own row.
    const otherKeys = await stack.request('GET', '/v1/keys', { token: other.token });
    expect(otherKeys.json<{ keys: { type: string }[] }>().keys.map((k) => k.type)).toEqual([
      'github',
    ]);
  });
});
