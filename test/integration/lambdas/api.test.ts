// The Lambda entry point, invoked with API Gateway HTTP API (payload 2.0)
// events as API Gateway sends them, against the test database.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { LambdaEvent } from 'hono/aws-lambda';
import { handler } from '../../../lambdas/api.js';
import { PROBLEM_TYPE_BASE } from '../../../lambdas/problem.js';
import { createTestDatabase, type TestDatabase } from '../../support/database.js';

let db: TestDatabase;
const adminToken = `lambda-admin-${randomBytes(24).toString('base64url')}`;
const savedEnv = { ...process.env };

const SETTINGS = [
  'DATABASE_URL',
  'MINIMCP_ADMIN_TOKEN',
  'MINIMCP_MASTER_KEY',
  'LOG_LEVEL',
  'MINIMCP_SSM_PREFIX',
  'KMS_KEY_ID',
  'MINIMCP_MAILER',
  'MINIMCP_SCOPE_CHECK_TIMEOUT_MS',
  'POWERTOOLS_METRICS_NAMESPACE',
];

beforeAll(async () => {
  db = await createTestDatabase();
  for (const name of SETTINGS) delete process.env[name];
  // Read when the handler is first built, as on Lambda (infra/constructs/api.ts sets it).
  process.env.POWERTOOLS_METRICS_NAMESPACE = 'MiniMCP/Test';
});
afterAll(async () => {
  for (const name of SETTINGS) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
  await db?.drop();
});

let sequence = 0;

/** An API Gateway HTTP API v2 event, shaped as API Gateway delivers it. */
function event(
  method: string,
  path: string,
  options: {
    token?: string;
    json?: unknown;
    base64?: boolean;
    sourceIp?: string;
    query?: string;
  } = {},
): LambdaEvent {
  sequence += 1;
  const body = options.json === undefined ? undefined : JSON.stringify(options.json);
  const headers: Record<string, string> = {
    accept: '*/*',
    host: 'abc123defg.execute-api.eu-west-1.amazonaws.com',
    'user-agent': 'curl/8.5.0',
    'x-amzn-trace-id': `Root=1-6744a0f0-0123456789abcdef0123456${sequence % 10}`,
    'x-forwarded-for': options.sourceIp ?? '203.0.113.7',
    'x-forwarded-port': '443',
    'x-forwarded-proto': 'https',
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(body));
  }
  const v2 = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: options.query ?? '',
    headers,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123defg',
      domainName: 'abc123defg.execute-api.eu-west-1.amazonaws.com',
      domainPrefix: 'abc123defg',
      http: {
        method,
        path,
        protocol: 'HTTP/1.1',
        sourceIp: options.sourceIp ?? '203.0.113.7',
        userAgent: 'curl/8.5.0',
      },
      requestId: `Rq${sequence}AbCdEfGhI=`,
      routeKey: '$default',
      stage: '$default',
      time: '25/Nov/2026:15:00:00 +0000',
      timeEpoch: 1795791600000,
    },
    isBase64Encoded: options.base64 === true,
    ...(body === undefined
      ? {}
      : { body: options.base64 ? Buffer.from(body).toString('base64') : body }),
  };
  // hono's event type differs from @types/aws-lambda's; this is the wire shape.
  return v2 as unknown as LambdaEvent;
}

async function invoke(e: LambdaEvent) {
  const result = await handler(e);
  const headers = result.headers as Record<string, string>;
  const text = result.isBase64Encoded ? Buffer.from(result.body, 'base64').toString() : result.body;
  return {
    status: result.statusCode,
    headers,
    text,
    body: (text ? JSON.parse(text) : undefined) as Record<string, unknown>,
  };
}

describe('the Lambda handler', () => {
  it('answers problem+json when the configuration is unusable, and does not cache the failure', async () => {
    const failed = await invoke(event('GET', '/v1/health'));
    expect(failed.status).toBe(500);
    expect(failed.headers['content-type']).toBe('application/problem+json');
    expect(failed.body).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}internal-error`,
      instance: '/v1/health',
      request_id: expect.stringMatching(/^Rq\d+AbCdEfGhI=$/),
    });
    expect(failed.text).not.toContain('DATABASE_URL');

    process.env.DATABASE_URL = db.appUrl;
    process.env.MINIMCP_ADMIN_TOKEN = adminToken;
    process.env.MINIMCP_MASTER_KEY = randomBytes(32).toString('base64');
    process.env.LOG_LEVEL = 'silent';
    // Account mail is not under test here: no outbox files under the working folder.
    process.env.MINIMCP_MAILER = 'none';
    // No test reaches a real upstream (GitHub's, for the scope check).
    process.env.MINIMCP_SCOPE_CHECK_TIMEOUT_MS = '0';
    const health = await invoke(event('GET', '/v1/health'));
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok', database: 'ok' });
  });

  it('serves the whole flow: admin creates a user, the user mints a token and stores a key', async () => {
    const created = await invoke(
      event('POST', '/v1/users', {
        token: adminToken,
        json: { email: 'lambda@example.test', password: 'lambda-password', name: 'Lambda' },
      }),
    );
    expect(created.status).toBe(201);

    // API Gateway base64-encodes some bodies; the adapter decodes them.
    const minted = await invoke(
      event('POST', '/v1/auth/token', {
        json: { email: 'lambda@example.test', password: 'lambda-password' },
        base64: true,
      }),
    );
    expect(minted.status).toBe(201);
    const token = minted.body.token as string;

    const key = `ghp_${'L'.repeat(36)}`;
    const stored = await invoke(event('PUT', '/v1/keys/github', { token, json: { key } }));
    expect(stored.status).toBe(200);
    expect(stored.body).toMatchObject({ type: 'github', hint: '…LLLL', active: true });

    const listed = await invoke(event('GET', '/v1/keys', { token, query: 'ignored=1' }));
    expect(listed.status).toBe(200);
    expect(listed.text).not.toContain(key);
    expect(listed.body.keys).toHaveLength(1);
  });

  it('answers errors as problem+json with API Gateway’s request id', async () => {
    const e = event('GET', '/v1/nowhere');
    const response = await invoke(e);
    const gatewayId = (e.requestContext as { requestId: string }).requestId;
    expect(response.status).toBe(404);
    expect(response.headers['content-type']).toBe('application/problem+json');
    expect(response.headers['x-request-id']).toBe(gatewayId);
    expect(response.body).toMatchObject({
      type: `${PROBLEM_TYPE_BASE}route-not-found`,
      instance: '/v1/nowhere',
      request_id: gatewayId,
    });
    const unauthenticated = await invoke(event('GET', '/v1/keys'));
    expect(unauthenticated.status).toBe(401);
    expect(unauthenticated.headers['www-authenticate']).toBe('Bearer realm="minimcp"');
  });

  it('rate-limits token requests per email and the source IP API Gateway reports', async () => {
    const attempt = (sourceIp: string) =>
      invoke(
        event('POST', '/v1/auth/token', {
          json: { email: 'lambda@example.test', password: 'wrong-password' },
          sourceIp,
        }),
      );
    for (let i = 0; i < 5; i += 1) expect((await attempt('198.51.100.1')).status).toBe(401);
    const limited = await attempt('198.51.100.1');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await attempt('198.51.100.2')).status).toBe(401);
  });

  it('writes each invocation’s request metrics as one EMF line: route template, method, status class', async () => {
    const written: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    const id = randomUUID();
    try {
      expect(
        (await invoke(event('GET', `/v1/instances/${id}`, { token: adminToken }))).status,
        // The bootstrap admin has no instances of its own.
      ).toBe(403);
    } finally {
      write.mockRestore();
    }
    const emf = written
      .flatMap((chunk) => chunk.split('\n'))
      .filter((line) => line.startsWith('{"_aws"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(emf).toEqual([
      expect.objectContaining({
        _aws: {
          Timestamp: expect.any(Number),
          CloudWatchMetrics: [
            {
              Namespace: 'MiniMCP/Test',
              Dimensions: [['service', 'route', 'method', 'status_class'], ['service']],
              Metrics: [
                { Name: 'ApiRequests', Unit: 'Count' },
                { Name: 'ApiServerErrors', Unit: 'Count' },
                { Name: 'ApiLatency', Unit: 'Milliseconds' },
              ],
            },
          ],
        },
        service: 'api',
        route: '/v1/instances/:id',
        method: 'GET',
        status_class: '4xx',
        ApiRequests: 1,
        ApiServerErrors: 0,
        ApiLatency: expect.any(Number),
      }),
    ]);
    expect(JSON.stringify(emf)).not.toContain(id);
  });

  it('keeps config, pool and app for the container’s life once built', async () => {
    process.env.DATABASE_URL = 'postgres://nobody:wrong@127.0.0.1:1/none';
    try {
      expect((await invoke(event('GET', '/v1/health'))).status).toBe(200);
    } finally {
      process.env.DATABASE_URL = db.appUrl;
    }
  });
});
