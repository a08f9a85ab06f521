// The API over real HTTP for tests: the app from createApp, served by the
// local server on 127.0.0.1:0, against a fresh database (the RLS-bound app
// role), a local key provider with a random master key, and captured logs.
import { randomBytes, randomUUID } from 'node:crypto';
import { expect } from '@jest/globals';
import { parseConfig, ApiConfigSchema, type ApiConfig } from '../../core/config.js';
import { createEnvelopeCipher, type EnvelopeCipher } from '../../core/crypto/envelope.js';
import { createLocalKeyProvider } from '../../core/crypto/local-provider.js';
import { insertUserToken } from '../../lambdas/control/db/user-tokens.js';
import { asUser } from '../../lambdas/control/db/user-context.js';
import { insertUser } from '../../lambdas/control/db/users.js';
import type { UserRole } from '../../core/domain.js';
import { createLogger } from '../../core/logger.js';
import { hashPassword } from '../../lambdas/control/passwords.js';
import type { RateLimiter } from '../../lambdas/control/rate-limit.js';
import { issueToken } from '../../core/tokens.js';
import type { AgentResolver } from '../../lambdas/control/agent-registry.js';
import {
  createInstanceService,
  type InstanceService,
} from '../../lambdas/control/instance-service.js';
import { createApp, type App } from '../../lambdas/app.js';
import type { AppDeps } from '../../lambdas/context.js';
import { nodeClientIp, startApiServer } from '../../lambdas/local-server.js';
import { PROBLEM_TYPE_BASE } from '../../lambdas/problem.js';
import { instanceServiceConfig } from '../../lambdas/runtime.js';
import { createTestDatabase, type TestDatabase } from './database.js';

/** Cheap scrypt for fixtures: the hash string carries its parameters, so login still verifies. */
const FIXTURE_SCRYPT = { ln: 10, r: 8, p: 1 };

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed JSON body, or undefined when the body is not JSON. */
  body: unknown;
  json<T = Record<string, unknown>>(): T;
}

export interface RequestOptions {
  token?: string;
  /** Sent as JSON with Content-Type: application/json. */
  json?: unknown;
  /** Sent as is. */
  body?: string;
  headers?: Record<string, string>;
}

export interface TestUser {
  id: string;
  email: string;
  password: string;
  role: UserRole;
}

export interface TestUserWithToken extends TestUser {
  token: string;
  tokenId: string;
}

export interface TestApi {
  url: string;
  db: TestDatabase;
  app: App;
  config: ApiConfig;
  adminToken: string;
  cipher: EnvelopeCipher;
  /** Every log line the app wrote, as JSON text. */
  logs: string[];
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  createUser(options?: { role?: UserRole; email?: string; password?: string }): Promise<TestUser>;
  createUserWithToken(options?: { role?: UserRole; email?: string }): Promise<TestUserWithToken>;
  close(): Promise<void>;
}

export interface StartTestApiOptions {
  /** Extra settings, as environment variables. */
  env?: Record<string, string>;
  cipher?: EnvelopeCipher;
  authRateLimiter?: RateLimiter;
  /** Use this database (and leave it open on close) instead of a fresh one. */
  db?: TestDatabase;
  /** Serve the instance routes with this service (default: one without agents). */
  instances?: InstanceService;
  /** Clients of the node agents (default: none, see noAgents). */
  agents?: AgentResolver;
}

/** Without agent clients (tests of other routes): every call fails as an unreachable agent's would. */
export const noAgents: AgentResolver = () => {
  throw new Error('no agent clients configured');
};

/** The app's complete dependencies from the basic ones, the rest from `options` or test defaults. */
export function testAppDeps(
  base: Pick<AppDeps, 'pool' | 'config' | 'cipher' | 'logger' | 'clientIp'>,
  options: Pick<StartTestApiOptions, 'instances' | 'agents' | 'authRateLimiter'> = {},
): AppDeps {
  const agents = options.agents ?? noAgents;
  const instances =
    options.instances ??
    createInstanceService({
      pool: base.pool,
      agents,
      logger: base.logger,
      config: instanceServiceConfig(base.config),
    });
  return {
    ...base,
    agents,
    instances,
    ...(options.authRateLimiter ? { authRateLimiter: options.authRateLimiter } : {}),
  };
}

export async function send(
  baseUrl: string,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body = options.body;
  if (options.json !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = JSON.stringify(options.json);
  }
  const response = await fetch(baseUrl + path, { method, headers, body });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: the caller asserts on `text`.
    parsed = undefined;
  }
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: parsed,
    json: <T>() => parsed as T,
  };
}

export async function startTestApi(options: StartTestApiOptions = {}): Promise<TestApi> {
  const ownDb = !options.db;
  const db = options.db ?? (await createTestDatabase());
  const adminToken = `admin-${randomBytes(24).toString('base64url')}`;
  const config = parseConfig(ApiConfigSchema, {
    DATABASE_URL: db.appUrl,
    MINIMCP_ADMIN_TOKEN: adminToken,
    LOG_LEVEL: 'info',
    // No outbox files under the working folder; tests of mail choose their own.
    MINIMCP_MAILER: 'none',
    // No test reaches a real upstream; a scope check's test turns it on with a fake.
    MINIMCP_SCOPE_CHECK_TIMEOUT_MS: '0',
    ...options.env,
  });
  const cipher =
    options.cipher ??
    createEnvelopeCipher({
      provider: await createLocalKeyProvider({
        masterKeyBase64: randomBytes(32).toString('base64'),
      }),
    });
  const logs: string[] = [];
  const logger = createLogger({
    level: config.LOG_LEVEL,
    destination: { write: (line: string) => void logs.push(line) },
  });
  const app = createApp(
    testAppDeps({ pool: db.app, config, cipher, logger, clientIp: nodeClientIp }, options),
  );
  const server = await startApiServer(app, { host: '127.0.0.1', port: 0 });

  const createUser: TestApi['createUser'] = async (userOptions = {}) => {
    const password = userOptions.password ?? `pw-${randomBytes(12).toString('hex')}`;
    const email = userOptions.email ?? `user-${randomUUID().slice(0, 8)}@example.test`;
    const row = await insertUser(db.app, {
      email,
      passwordHash: await hashPassword(password, FIXTURE_SCRYPT),
      name: `Test ${email}`,
      role: userOptions.role ?? 'user',
    });
    return { id: row.id, email: row.email, password, role: row.role };
  };

  return {
    url: server.url,
    db,
    app,
    config,
    adminToken,
    cipher,
    logs,
    request: (method, path, requestOptions) => send(server.url, method, path, requestOptions),
    createUser,
    async createUserWithToken(userOptions = {}) {
      const user = await createUser(userOptions);
      const issued = issueToken('user');
      const row = await asUser(db.app, user.id, (tx) =>
        insertUserToken(tx, {
          userId: user.id,
          name: 'fixture',
          hash: issued.hash,
          prefix: issued.displayPrefix,
          expiresAt: null,
        }),
      );
      return { ...user, token: issued.token, tokenId: row.id };
    },
    async close() {
      try {
        await server.close();
      } finally {
        if (ownDb) await db.drop();
      }
    },
  };
}

/** Asserts an RFC 9457 answer: status, content type, our `type` URI, and the request id. */
export function expectProblem(response: ApiResponse, status: number, slug: string): void {
  expect({ status: response.status, body: response.body }).toMatchObject({
    status,
    body: { type: PROBLEM_TYPE_BASE + slug, status },
  });
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  const body = response.json<{ title: unknown; detail: unknown; request_id: unknown }>();
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.request_id).toBe(response.headers.get('x-request-id'));
  // Never a stack trace or SQL.
  expect(response.text).not.toMatch(/\n\s+at |SELECT |INSERT |UPDATE |DELETE FROM/);
}

export interface Probe {
  method: string;
  path: string;
  json?: unknown;
}

/**
 * Every probe, sent with another user's token, answers 404 not-found: the
 * resource is invisible, not forbidden (no existence leak). Part 2 adds
 * instance, log and event probes.
 */
export async function expectInvisibleTo(
  api: TestApi,
  token: string,
  probes: readonly Probe[],
): Promise<void> {
  for (const probe of probes) {
    const response = await api.request(probe.method, probe.path, {
      token,
      ...(probe.json !== undefined ? { json: probe.json } : {}),
    });
    expect({ probe, status: response.status }).toEqual({ probe, status: 404 });
    expectProblem(response, 404, 'not-found');
  }
}
