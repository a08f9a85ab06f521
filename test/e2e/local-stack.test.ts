// The whole local stack (`npm start`'s code: embedded PostgreSQL, API, one
// agent), driven the way a user drives it: HTTP calls to the API and the
// official MCP SDK client against the instances it hands out. The stack is
// shared by the file; each test makes its own user and instances, so any one
// of them can run alone.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'slonik';
import { createDatabasePool, type DatabasePool } from '../../core/db/pool.js';
import { createLogger } from '../../core/logger.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { DIST_ROOT, randomPortRange } from '../support/agent-harness.js';
import { send, type ApiResponse, type RequestOptions } from '../support/api.js';
import { connectMcpClient } from '../support/mcp-client.js';
import { initializeRequest, postMcp } from '../support/mcp-http.js';
import { portOpen, waitFor } from '../support/wait.js';

const GITHUB_KEY = 'ghp_' + 'e2e'.repeat(12);

interface Instance {
  id: string;
  status: string;
  access_url: string;
  access_token: string;
  port: number;
  expires_at: string;
}

/** A local stand-in for api.github.com: GET /user, checking the key arrives. */
async function startFakeGitHub(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    if (req.url === '/user' && req.headers.authorization === `Bearer ${GITHUB_KEY}`) {
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-oauth-scopes': 'repo, read:user',
      });
      res.end(
        JSON.stringify({
          login: 'octo-e2e',
          id: 1,
          name: 'Octo E2E',
          html_url: 'https://github.com/octo-e2e',
          type: 'User',
        }),
      );
      return;
    }
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ message: 'Bad credentials' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    seen,
    server,
  };
}

describe('the local stack, end to end', () => {
  let stack: LocalStack;
  let owner: DatabasePool;
  let dataDir: string;
  let github: Awaited<ReturnType<typeof startFakeGitHub>>;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'minimcp-e2e-'));
    github = await startFakeGitHub();
    const range = randomPortRange(10);
    stack = await startLocalStack({
      env: {
        PATH: process.env.PATH,
        MINIMCP_DATA_DIR: dataDir,
        MINIMCP_PG_PORT: String(await findFreePort()),
        MINIMCP_API_PORT: '0',
        MINIMCP_GRPC_LISTEN: `127.0.0.1:${await findFreePort()}`,
        MINIMCP_METRICS_LISTEN: '127.0.0.1:0',
        MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: github.url }),
        MINIMCP_RECONCILE_SECONDS: '1',
        MINIMCP_USAGE_SECONDS: '1',
        MINIMCP_ADMIN_TOKEN: 'mma_' + randomBytes(24).toString('base64url'),
      },
      logger: createLogger({ level: 'warn', name: 'e2e' }),
      serversRoot: DIST_ROOT,
    });
    owner = await createDatabasePool(stack.database.ownerUrl, { maximumPoolSize: 2 });
  });

  afterAll(async () => {
    await owner?.end();
    await stack?.close();
    github?.server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The API as a user's HTTP client calls it (its user agent ends up in the events). */
  const api = (method: string, route: string, options: RequestOptions = {}): Promise<ApiResponse> =>
    send(stack.apiUrl, method, route, { ...options, headers: { 'user-agent': 'minimcp-e2e' } });

  /** An admin creates a user with a fresh email; the user mints an API token with the password. */
  const signUp = async () => {
    const email = `e2e-${randomUUID().slice(0, 8)}@example.test`;
    const password = 'correct horse battery staple';
    const created = await api('POST', '/v1/users', {
      token: stack.adminToken,
      json: { email, password, name: 'E2E' },
    });
    const minted = await api('POST', '/v1/auth/token', { json: { email, password } });
    return { created, minted, token: minted.json<{ token: string }>().token };
  };
  const newUserToken = async (): Promise<string> => {
    const { created, minted, token } = await signUp();
    expect(created.status).toBe(201);
    expect(minted.status).toBe(201);
    return token;
  };
  const storeGithubKey = (token: string) =>
    api('PUT', '/v1/keys/github', { token, json: { key: GITHUB_KEY } });
  const createDemo = (token: string) =>
    api('POST', '/v1/instances', { token, json: { type: 'demo', duration_minutes: 30 } });
  /** A new user with a running demo instance of their own. */
  const newDemo = async (): Promise<{ token: string; demo: Instance }> => {
    const token = await newUserToken();
    const created = await createDemo(token);
    expect(created.status).toBe(201);
    return { token, demo: created.json<Instance>() };
  };
  const getInstance = (id: string, token: string) => api('GET', `/v1/instances/${id}`, { token });
  const waitForStatus = (id: string, token: string, status: string, label: string) =>
    waitFor(
      label,
      async () => (await getInstance(id, token)).json<Instance>().status === status,
      30_000,
    );
  const extend = (id: string, token: string) =>
    api('POST', `/v1/instances/${id}/extend`, { token, json: { minutes: 5 } });
  /** Makes the instance due in a moment: the agent picks the new expiry up on its next pass. */
  const expireSoon = async (id: string, token: string): Promise<void> => {
    await owner.query(
      sql.unsafe`UPDATE mcp_instances SET expires_at = now() + interval '1 second' WHERE id = ${id}`,
    );
    await waitForStatus(id, token, 'expired', 'expired');
  };
  const restore = (id: string, token: string) =>
    api('POST', `/v1/instances/${id}/restore`, { token });

  it('lets an admin create a user, who mints an API token and stores a key', async () => {
    const { created, minted, token } = await signUp();
    expect(created.status).toBe(201);
    expect(minted.status).toBe(201);
    const stored = await storeGithubKey(token);
    expect(stored.status).toBe(200);
    expect(JSON.stringify(stored.body)).not.toContain(GITHUB_KEY);
  });

  it('creates a demo instance that two MCP clients use at once', async () => {
    const token = await newUserToken();
    const created = await createDemo(token);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'running', type: 'demo' });
    const demo = created.json<Instance>();

    const [a, b] = await Promise.all([
      connectMcpClient(demo.access_url, demo.access_token, 'a'),
      connectMcpClient(demo.access_url, demo.access_token, 'b'),
    ]);
    expect((await a.listTools()).tools.map((t) => t.name)).toEqual(
      expect.arrayContaining(['echo', 'add']),
    );
    const calls = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? a : b).callTool({ name: 'add', arguments: { numbers: [i, 1000] } }),
      ),
    );
    calls.forEach((result, i) =>
      expect(result.structuredContent).toEqual({ sum: i + 1000, count: 2 }),
    );
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a wrong token with 401 and a foreign Origin with 403', async () => {
    const { demo } = await newDemo();

    const wrong = await postMcp(demo.access_url, initializeRequest(), {
      authorization: 'Bearer mcp_wrong',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const foreign = await postMcp(demo.access_url, initializeRequest(), {
      authorization: `Bearer ${demo.access_token}`,
      origin: 'https://evil.example',
    });
    expect(foreign.status).toBe(403);
  });

  it('runs a github instance against the (fake) GitHub API with the stored key', async () => {
    const token = await newUserToken();
    expect((await storeGithubKey(token)).status).toBe(200);

    const created = await api('POST', '/v1/instances', { token, json: { type: 'github' } });
    expect(created.status).toBe(201);
    const instance = created.json<Instance>();
    const client = await connectMcpClient(instance.access_url, instance.access_token, 'e2e');
    const me = await client.callTool({ name: 'get_authenticated_user', arguments: {} });
    expect(JSON.stringify(me.structuredContent)).toContain('octo-e2e');
    await client.close();
    expect(github.seen).toContain(`GET /user Bearer ${GITHUB_KEY}`);
    expect(JSON.stringify(me)).not.toContain(GITHUB_KEY);
  });

  it('extends, expires (port closed, status expired, event written) and restores an instance', async () => {
    const { token, demo } = await newDemo();

    const before = await getInstance(demo.id, token);
    const extended = await extend(demo.id, token);
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.json<Instance>().expires_at)).toBeGreaterThan(
      Date.parse(before.json<Instance>().expires_at),
    );

    await expireSoon(demo.id, token);
    expect(await portOpen(demo.port)).toBe(false);

    const restored = await restore(demo.id, token);
    expect([201, 202]).toContain(restored.status);
    await waitForStatus(demo.id, token, 'running', 'running again');
    const current = (await getInstance(demo.id, token)).json<Instance>();
    const client = await connectMcpClient(current.access_url, demo.access_token, 'e2e');
    expect(
      (await client.callTool({ name: 'echo', arguments: { text: 'back again' } }))
        .structuredContent,
    ).toEqual({ text: 'back again' });
    await client.close();
  });

  it('shows the logs and the events of the instance through the API', async () => {
    const { token, demo } = await newDemo();
    expect((await extend(demo.id, token)).status).toBe(200);
    await expireSoon(demo.id, token);
    expect([201, 202]).toContain((await restore(demo.id, token)).status);

    const events = await waitFor('events', async () => {
      const page = await api('GET', `/v1/instances/${demo.id}/events`, { token });
      const { events } = page.json<{ events: { type: string }[] }>();
      const types = events.map((e) => e.type);
      return ['created', 'started', 'extended', 'expired', 'restored'].every((t) =>
        types.includes(t),
      )
        ? events
        : undefined;
    });
    expect(events.find((e) => e.type === 'created')).toMatchObject({
      user_agent: 'minimcp-e2e',
    });
    const logs = await waitFor('logs', async () => {
      const page = await api('GET', `/v1/instances/${demo.id}/logs?limit=100`, { token });
      const { logs } = page.json<{ logs: { source: string }[] }>();
      return logs.length > 0 ? logs : undefined;
    });
    expect(logs.some((l) => l.source === 'system')).toBe(true);
  });

  it('deletes an instance: port free, then 404', async () => {
    const { token, demo } = await newDemo();

    const deleted = await api('DELETE', `/v1/instances/${demo.id}`, { token });
    expect(deleted.status).toBe(204);
    await waitFor('port closed', async () => !(await portOpen(demo.port)));
    expect((await getInstance(demo.id, token)).status).toBe(404);
    const held = await owner.oneFirst(
      sql.unsafe`SELECT count(*)::int FROM port_allocations WHERE mcp_instance_id = ${demo.id}`,
    );
    expect(held).toBe(0);
  });
});
