// The whole local stack (`npm start`'s code: embedded PostgreSQL, API, one
// agent), driven the way a user drives it: HTTP calls to the API and the
// official MCP SDK client against the instances it hands out.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { sql } from 'slonik';
import { createDatabasePool, type DatabasePool } from '../../core/db/pool.js';
import { createLogger } from '../../core/logger.js';
import { findFreePort } from '../../infra/local/postgres-server.js';
import { startLocalStack, type LocalStack } from '../../infra/local/local-stack.js';
import { DIST_ROOT, randomPortRange } from '../support/agent-harness.js';
import { portOpen, waitFor } from '../support/wait.js';

const GITHUB_KEY = 'ghp_' + 'e2e'.repeat(12);

interface Api {
  call(
    method: string,
    route: string,
    options?: { token?: string; body?: unknown },
  ): Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function apiClient(base: string): Api {
  return {
    async call(method, route, options = {}) {
      const response = await fetch(base + route, {
        method,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
          'user-agent': 'minimcp-e2e',
        },
        ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      });
      const text = await response.text();
      return { status: response.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

async function mcpClient(url: string, token: string, name = 'e2e'): Promise<Client> {
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }),
  );
  return client;
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
  let api: Api;
  let owner: DatabasePool;
  let dataDir: string;
  let github: Awaited<ReturnType<typeof startFakeGitHub>>;
  let userToken: string;
  let demo: { id: string; access_url: string; access_token: string; port: number };

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
        MINIMCP_PORT_RANGE: `${range.start}-${range.end}`,
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: github.url }),
        MINIMCP_RECONCILE_SECONDS: '1',
        MINIMCP_USAGE_SECONDS: '1',
        MINIMCP_ADMIN_TOKEN: 'mma_' + randomBytes(24).toString('base64url'),
      },
      logger: createLogger({ level: 'warn', name: 'e2e' }),
      serversRoot: DIST_ROOT,
    });
    api = apiClient(stack.apiUrl);
    owner = await createDatabasePool(stack.database.ownerUrl, { maximumPoolSize: 2 });
  });

  afterAll(async () => {
    await owner?.end();
    await stack?.close();
    github?.server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('lets an admin create a user, who mints an API token and stores a key', async () => {
    const created = await api.call('POST', '/v1/users', {
      token: stack.adminToken,
      body: { email: 'e2e@example.test', password: 'correct horse battery staple', name: 'E2E' },
    });
    expect(created.status).toBe(201);
    const minted = await api.call('POST', '/v1/auth/token', {
      body: { email: 'e2e@example.test', password: 'correct horse battery staple' },
    });
    expect(minted.status).toBe(201);
    userToken = minted.body.token;
    const stored = await api.call('PUT', '/v1/keys/github', {
      token: userToken,
      body: { key: GITHUB_KEY },
    });
    expect(stored.status).toBe(200);
    expect(JSON.stringify(stored.body)).not.toContain(GITHUB_KEY);
  });

  it('creates a demo instance that two MCP clients use at once', async () => {
    const created = await api.call('POST', '/v1/instances', {
      token: userToken,
      body: { type: 'demo', duration_minutes: 30 },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ status: 'running', type: 'demo' });
    demo = created.body;

    const [a, b] = await Promise.all([
      mcpClient(demo.access_url, demo.access_token, 'a'),
      mcpClient(demo.access_url, demo.access_token, 'b'),
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
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: {
        protocolVersion: '2025-06-18',
        capabilities: {},
        clientInfo: { name: 'x', version: '1' },
      },
    };
    const headers = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
    };
    const wrong = await fetch(demo.access_url, {
      method: 'POST',
      headers: { ...headers, authorization: 'Bearer mcp_wrong' },
      body: JSON.stringify(init),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const foreign = await fetch(demo.access_url, {
      method: 'POST',
      headers: {
        ...headers,
        authorization: `Bearer ${demo.access_token}`,
        origin: 'https://evil.example',
      },
      body: JSON.stringify(init),
    });
    expect(foreign.status).toBe(403);
  });

  it('runs a github instance against the (fake) GitHub API with the stored key', async () => {
    const created = await api.call('POST', '/v1/instances', {
      token: userToken,
      body: { type: 'github' },
    });
    expect(created.status).toBe(201);
    const client = await mcpClient(created.body.access_url, created.body.access_token);
    const me = await client.callTool({ name: 'get_authenticated_user', arguments: {} });
    expect(JSON.stringify(me.structuredContent)).toContain('octo-e2e');
    await client.close();
    expect(github.seen).toContain(`GET /user Bearer ${GITHUB_KEY}`);
    expect(JSON.stringify(me)).not.toContain(GITHUB_KEY);
  });

  it('extends, expires (port closed, status expired, event written) and restores an instance', async () => {
    const before = await api.call('GET', `/v1/instances/${demo.id}`, { token: userToken });
    const extended = await api.call('POST', `/v1/instances/${demo.id}/extend`, {
      token: userToken,
      body: { minutes: 5 },
    });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.expires_at)).toBeGreaterThan(
      Date.parse(before.body.expires_at),
    );

    // Make it due in a moment: the agent picks the new expiry up on its next pass.
    await owner.query(
      sql.unsafe`UPDATE mcp_instances SET expires_at = now() + interval '1 second' WHERE id = ${demo.id}`,
    );
    await waitFor(
      'expired',
      async () =>
        (await api.call('GET', `/v1/instances/${demo.id}`, { token: userToken })).body.status ===
        'expired',
      30_000,
    );
    expect(await portOpen(demo.port)).toBe(false);

    const restored = await api.call('POST', `/v1/instances/${demo.id}/restore`, {
      token: userToken,
    });
    expect([201, 202]).toContain(restored.status);
    await waitFor(
      'running again',
      async () =>
        (await api.call('GET', `/v1/instances/${demo.id}`, { token: userToken })).body.status ===
        'running',
      30_000,
    );
    const current = (await api.call('GET', `/v1/instances/${demo.id}`, { token: userToken })).body;
    const client = await mcpClient(current.access_url, demo.access_token);
    expect(
      (await client.callTool({ name: 'echo', arguments: { text: 'back again' } }))
        .structuredContent,
    ).toEqual({ text: 'back again' });
    await client.close();
    demo = { ...demo, access_url: current.access_url, port: current.port };
  });

  it('shows the logs and the events of the instance through the API', async () => {
    const events = await waitFor('events', async () => {
      const page = await api.call('GET', `/v1/instances/${demo.id}/events`, { token: userToken });
      const types = page.body.events.map((e: { type: string }) => e.type);
      return ['created', 'started', 'extended', 'expired', 'restored'].every((t) =>
        types.includes(t),
      )
        ? page.body.events
        : undefined;
    });
    expect(events.find((e: { type: string }) => e.type === 'created')).toMatchObject({
      user_agent: 'minimcp-e2e',
    });
    const logs = await waitFor('logs', async () => {
      const page = await api.call('GET', `/v1/instances/${demo.id}/logs?limit=100`, {
        token: userToken,
      });
      return page.body.logs.length > 0 ? page.body.logs : undefined;
    });
    expect(logs.some((l: { source: string }) => l.source === 'system')).toBe(true);
  });

  it('deletes an instance: port free, then 404', async () => {
    const deleted = await api.call('DELETE', `/v1/instances/${demo.id}`, { token: userToken });
    expect(deleted.status).toBe(204);
    await waitFor('port closed', async () => !(await portOpen(demo.port)));
    expect((await api.call('GET', `/v1/instances/${demo.id}`, { token: userToken })).status).toBe(
      404,
    );
    const held = await owner.oneFirst(
      sql.unsafe`SELECT count(*)::int FROM port_allocations WHERE mcp_instance_id = ${demo.id}`,
    );
    expect(held).toBe(0);
  });
});
