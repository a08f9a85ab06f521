// The HTTP contract every route shares, over real HTTP: health, the OpenAPI
// document, request ids, and problem+json for routing, body and server errors.
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createDatabasePool } from '../../../core/db/pool.js';
import { createLogger } from '../../../core/logger.js';
import { createApp } from '../../../lambdas/app.js';
import { nodeClientIp, startApiServer } from '../../../lambdas/local-server.js';
import { expectProblem, send, startTestApi, testAppDeps, type TestApi } from '../../support/api.js';

let api: TestApi;
let user: Awaited<ReturnType<TestApi['createUserWithToken']>>;

beforeAll(async () => {
  api = await startTestApi({ env: { MINIMCP_MAX_BODY_BYTES: '4096' } });
  user = await api.createUserWithToken();
});
afterAll(async () => {
  await api?.close();
});

/** A TCP relay to PostgreSQL that the test can cut (every connection dropped) and restore. */
async function startDatabaseRelay(targetPort: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const listen = async () => {
    server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  };
  await listen();
  return {
    get port() {
      return port;
    },
    async cut() {
      for (const socket of sockets) socket.destroy();
      const closing = server;
      server = undefined;
      if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
    },
    restore: listen,
  };
}

describe('GET /v1/health', () => {
  it('answers 200 when the database answers', async () => {
    const response = await api.request('GET', '/v1/health');
    expect(response.status).toBe(200);
    expect(response.body).toEqual({ status: 'ok', database: 'ok' });
  });

  it('answers 503 database-unavailable with Retry-After while the database is unreachable, and recovers', async () => {
    const target = new URL(api.db.appUrl);
    const relay = await startDatabaseRelay(Number(target.port));
    target.port = String(relay.port);
    const pool = await createDatabasePool(target.toString(), { connectionTimeoutMs: 2_000 });
    const logs: string[] = [];
    const app = createApp(
      testAppDeps({
        config: api.config,
        cipher: api.cipher,
        clientIp: nodeClientIp,
        pool,
        logger: createLogger({ destination: { write: (l: string) => void logs.push(l) } }),
      }),
    );
    const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });
    try {
      expect((await send(server.url, 'GET', '/v1/health')).status).toBe(200);
      await relay.cut();
      const health = await send(server.url, 'GET', '/v1/health');
      expectProblem(health, 503, 'database-unavailable');
      expect(health.headers.get('retry-after')).toBe('5');
      // An authenticated route fails the same way (the token lookup needs the database).
      const keys = await send(server.url, 'GET', '/v1/keys', { token: user.token });
      expectProblem(keys, 503, 'database-unavailable');
      expect(logs.join('')).not.toContain(user.token);
      await relay.restore();
      expect((await send(server.url, 'GET', '/v1/health')).status).toBe(200);
    } finally {
      await server.close();
      await pool.end();
      await relay.cut();
    }
  });
});

describe('GET /v1/openapi.json', () => {
  it('is an OpenAPI 3.1 document with every route, the bearer scheme and the Problem schema', async () => {
    const response = await api.request('GET', '/v1/openapi.json');
    expect(response.status).toBe(200);
    const doc = response.json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { responses: Record<string, unknown>; security?: unknown }>
      >;
      components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
    }>();
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(operations.sort()).toEqual(
      [
        'GET /v1/health',
        'POST /v1/auth/token',
        'POST /v1/tokens',
        'GET /v1/tokens',
        'DELETE /v1/tokens/{id}',
        'POST /v1/users',
        'GET /v1/users',
        'POST /v1/users/{id}/deactivate',
        'GET /v1/me',
        'PUT /v1/keys/{type}',
        'GET /v1/keys',
        'DELETE /v1/keys/{type}',
        'POST /v1/keys/{type}/disable',
        'POST /v1/keys/{type}/enable',
        'GET /v1/types',
        'GET /v1/types/{name}',
        'POST /v1/types',
        'PATCH /v1/types/{name}',
        'GET /v1/nodes',
        'POST /v1/nodes/{id}/drain',
        'POST /v1/nodes/{id}/activate',
        // Registered always: the app's dependencies are complete (issue 17).
        'POST /v1/instances',
        'GET /v1/instances',
        'GET /v1/instances/{id}',
        'DELETE /v1/instances/{id}',
        'POST /v1/instances/{id}/extend',
        'POST /v1/instances/{id}/restore',
        'POST /v1/instances/{id}/token',
        'GET /v1/instances/{id}/logs',
        'GET /v1/instances/{id}/events',
        'GET /v1/settings',
        'PATCH /v1/settings/{key}',
        'POST /v1/auth/verify',
        'POST /v1/auth/verify/request',
        'DELETE /v1/users/{id}',
        'GET /v1/me/export',
        'DELETE /v1/me',
      ].sort(),
    );
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas).toHaveProperty('Problem');
    expect(doc.components.schemas).toHaveProperty('PutApiKey');
    expect(doc.components.schemas).toHaveProperty('StoredApiKey');
    expect(doc.components.schemas).toHaveProperty('ScopeCheck');
    expect(doc.paths['/v1/keys/{type}']!.put!.responses['400']).toMatchObject({
      content: { 'application/problem+json': expect.anything() },
    });
    expect(doc.paths['/v1/keys']!.get!.security).toEqual([{ bearer: [] }]);
  });
});

describe('request ids', () => {
  it('echo a well-formed x-request-id in the header, the problem body and the log', async () => {
    const response = await api.request('GET', '/v1/nowhere', {
      headers: { 'x-request-id': 'client-req-42' },
    });
    expect(response.headers.get('x-request-id')).toBe('client-req-42');
    expect(response.json<{ request_id: string }>().request_id).toBe('client-req-42');
    expect(api.logs.some((line) => line.includes('"requestId":"client-req-42"'))).toBe(true);
  });

  it('are generated when absent or malformed', async () => {
    const absent = await api.request('GET', '/v1/health');
    const malformed = await api.request('GET', '/v1/health', {
      headers: { 'x-request-id': 'has spaces and <angle>' },
    });
    const uuid = /^[0-9a-f-]{36}$/;
    expect(absent.headers.get('x-request-id')).toMatch(uuid);
    expect(malformed.headers.get('x-request-id')).toMatch(uuid);
  });
});

describe('routing errors', () => {
  it('answer an unknown route with 404 route-not-found', async () => {
    const response = await api.request('GET', '/v2/keys');
    expectProblem(response, 404, 'route-not-found');
    expect(response.json<{ detail: string; instance: string }>()).toMatchObject({
      detail: 'There is no route /v2/keys.',
      instance: '/v2/keys',
    });
  });

  it('answer a known path with the wrong method with 405 and Allow', async () => {
    const response = await api.request('PATCH', '/v1/keys/github', { token: user.token });
    expectProblem(response, 405, 'method-not-allowed');
    expect(response.headers.get('allow')).toBe('PUT, DELETE');
    const tokens = await api.request('PUT', '/v1/tokens');
    expectProblem(tokens, 405, 'method-not-allowed');
    expect(tokens.headers.get('allow')).toBe('POST, GET, HEAD');
  });

  it('do not match a trailing slash', async () => {
    expectProblem(await api.request('GET', '/v1/health/'), 404, 'route-not-found');
  });
});

describe('request bodies', () => {
  it('refuse malformed JSON with 400 malformed-json', async () => {
    const response = await api.request('POST', '/v1/tokens', {
      token: user.token,
      body: '{"name": "laptop",',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(response, 400, 'malformed-json');
  });

  it('refuse another content type with 415', async () => {
    const response = await api.request('POST', '/v1/tokens', {
      token: user.token,
      body: 'name=laptop',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectProblem(response, 415, 'unsupported-media-type');
    const untyped = await api.request('POST', '/v1/tokens', {
      token: user.token,
      body: '{"name":"x"}',
    });
    // fetch labels a string body text/plain.
    expectProblem(untyped, 415, 'unsupported-media-type');
  });

  it('refuse a missing body as a validation failure naming the missing field', async () => {
    const response = await api.request('POST', '/v1/tokens', { token: user.token });
    expectProblem(response, 400, 'validation-failed');
    expect(response.json<{ detail: string }>().detail).toContain('body.name');
  });

  it('refuse a body over MINIMCP_MAX_BODY_BYTES with 413', async () => {
    const response = await api.request('POST', '/v1/tokens', {
      token: user.token,
      json: { name: 'x'.repeat(5000) },
    });
    expectProblem(response, 413, 'payload-too-large');
    expect(response.json<{ detail: string }>().detail).toContain('4096 bytes');
  });

  it('refuse a body PostgreSQL could not store (NUL characters) or nested absurdly deep', async () => {
    const nul = await api.request('POST', '/v1/tokens', {
      token: user.token,
      json: { name: 'a\u0000b' },
    });
    expectProblem(nul, 400, 'validation-failed');
    expect(nul.json<{ detail: string }>().detail).toContain('NUL');
    const deep = await api.request('POST', '/v1/tokens', {
      token: user.token,
      body: `{"name":${'['.repeat(100)}${']'.repeat(100)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(deep, 400, 'validation-failed');
    expect(deep.json<{ detail: string }>().detail).toContain('deeper than 32');
  });

  it('refuse wrong types and unknown fields, naming each field and the value sent', async () => {
    const response = await api.request('POST', '/v1/tokens', {
      token: user.token,
      json: { name: 42, expires_in_days: 'soon', color: 'red' },
    });
    expectProblem(response, 400, 'validation-failed');
    const body = response.json<{ detail: string; errors: { field: string; message: string }[] }>();
    expect(body.errors.map((e) => e.field).sort()).toEqual([
      'body',
      'body.expires_in_days',
      'body.name',
    ]);
    expect(body.detail).toContain('Unrecognized key: "color"');
    expect(body.detail).toContain('(got "soon")');
    expect(body.detail).toContain('(got 42)');
  });
});

describe('unexpected errors', () => {
  it('answer 500 internal-error with a generic detail, and log the cause without secrets', async () => {
    const failing = await startTestApi({
      db: api.db,
      cipher: {
        encrypt: () => Promise.reject(new Error('key service exploded')),
        decrypt: () => Promise.reject(new Error('unused')),
      },
    });
    try {
      const owner = await failing.createUserWithToken();
      const key = `ghp_${'S'.repeat(36)}`;
      const response = await failing.request('PUT', '/v1/keys/github', {
        token: owner.token,
        json: { key },
      });
      expectProblem(response, 500, 'internal-error');
      const body = response.json<{ detail: string; request_id: string }>();
      expect(body.detail).not.toContain('exploded');
      expect(body.detail).toContain(body.request_id);
      const logs = failing.logs.join('');
      expect(logs).toContain('key service exploded');
      expect(logs).toContain(body.request_id);
      expect(logs).not.toContain(key);
      expect(logs).not.toContain(owner.token);
    } finally {
      await failing.close();
    }
  });
});
