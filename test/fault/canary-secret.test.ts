// Canary secret sweep: unique keys travel through every path a key takes —
// store, replace, create, spawn (built-in server and registered commands),
// upstream errors that echo the key, a child printing it, a crash loop, a
// command that cannot start, token rotation, delete — and afterwards no form
// of them (clear, base64, base64url, percent, hex) is in any table, any file
// of the agent, any log line of the API or the agent, or any answer the test
// received. Access tokens and user tokens are stored only as SHA-256.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { sql } from 'slonik';
import { z } from 'zod';
import { hashToken } from '../../core/tokens.js';
import { PROBLEM_TYPE_BASE } from '../../lambdas/problem.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import type { ApiResponse } from '../support/api.js';
import { startFaultStack, type FaultStack, type FaultUser } from '../support/fault-stack.js';
import { dumpDatabase, findLeaks, readTree, secretForms } from '../support/secret-scan.js';
import { waitFor } from '../support/wait.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/children/', import.meta.url));

/** A GitHub-shaped key no one else will ever write: its random part is the needle. */
const canary = () => `ghp_${randomBytes(27).toString('base64url').replace(/[-_]/g, 'Z')}`;
const FIRST_KEY = canary();
const SECOND_KEY = canary();

/**
 * A stand-in for api.github.com that hands the Authorization header back in
 * every body, the way a careless upstream or proxy might: in a 401, in a 500,
 * and as data (clear and base64) in a 200.
 */
async function startEchoingGitHub(): Promise<{ url: string; seen: string[]; server: Server }> {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const auth = req.headers.authorization ?? '';
    seen.push(auth);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.url === '/user') return reply(401, { message: `Bad credentials: ${auth}` });
    if (req.url === '/repos/octo/leaky')
      return reply(200, {
        id: 1,
        name: 'leaky',
        full_name: 'octo/leaky',
        // The key as sent, and base64-encoded (as in a Basic credential or a token dump).
        description: `called with ${auth}; key ${Buffer.from(auth.replace(/^Bearer /, '')).toString('base64')}`,
        private: false,
        html_url: 'https://github.com/octo/leaky',
        owner: { login: 'octo' },
      });
    return reply(500, { message: `upstream broke while handling ${auth}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

const InstanceBody = z.object({
  id: z.string(),
  status: z.string(),
  access_url: z.string(),
  access_token: z.string(),
});
type Created = z.infer<typeof InstanceBody>;

describe('canary secret sweep', () => {
  let db: TestDatabase;
  let github: Awaited<ReturnType<typeof startEchoingGitHub>>;
  let stack: FaultStack;
  let owner: FaultUser;
  /** Tool results and MCP errors, as text: they are answers too. */
  const mcpAnswers: { where: string; text: string }[] = [];
  /** Access tokens handed out (each shown once, in its create or rotate answer). */
  const accessTokens: string[] = [];
  const instanceIds: Record<string, string> = {};
  let firstGithub: Created;

  const registerType = async (name: string, command: string, args: string[]) => {
    const response = await stack.request('POST', '/v1/types', {
      token: stack.adminToken,
      json: {
        name,
        display_name: name,
        command,
        args,
        requires_key: true,
        // The key reaches the child twice: as MINIMCP_API_KEY and through the mapping.
        env_mapping: { CANARY_KEY: '{{key}}' },
        resource_limits: { cpu: '1', memory: '256m' },
      },
    });
    expectStatus(response, 201);
  };

  const storeKey = async (type: string, key: string) => {
    const response = await stack.request('PUT', `/v1/keys/${type}`, {
      token: owner.token,
      json: { key },
    });
    expectStatus(response, 200);
    expect(response.text).not.toContain(key);
    return response;
  };

  const create = (type: string) =>
    stack.request('POST', '/v1/instances', { token: owner.token, json: { type } });

  /** The status, with the body in the failure message when it differs. */
  const expectStatus = (response: ApiResponse, status: number | number[]) => {
    const expected = Array.isArray(status) ? status : [status];
    if (!expected.includes(response.status))
      throw new Error(
        `expected ${expected.join(' or ')}, got ${response.status}: ${response.text}`,
      );
  };

  const callTool = async (
    label: string,
    accessUrl: string,
    token: string,
    name: string,
    args: Record<string, unknown> = {},
  ) => {
    const client = await stack.connectMcp(accessUrl, token);
    try {
      const result = await client.callTool({ name, arguments: args });
      mcpAnswers.push({ where: `mcp ${label}`, text: JSON.stringify(result) });
      return result;
    } finally {
      await client.close();
    }
  };

  const logsOf = (id: string) =>
    db.owner.anyFirst(
      sql.type(z.object({ message: z.string() }))`
        SELECT message FROM mcp_logs WHERE mcp_instance_id = ${id} ORDER BY timestamp`,
    );

  beforeAll(async () => {
    db = await createTestDatabase();
    github = await startEchoingGitHub();
    stack = await startFaultStack({
      appUrl: db.appUrl,
      agentUrl: db.agentUrl,
      agentEnv: {
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: github.url }),
        MINIMCP_MAX_RESTARTS: '1',
        MINIMCP_HANDSHAKE_TIMEOUT_MS: '5000',
        // Long enough that what a test sees after an API call is what that call
        // did, not what the agent's next reconcile pass repaired.
        MINIMCP_RECONCILE_SECONDS: '60',
      },
    });
    owner = await stack.createUser();
    await registerType('canary-crash', process.execPath, [`${FIXTURES}crash.mjs`]);
    await registerType('canary-fixture', process.execPath, [`${FIXTURES}mcp-fixture.mjs`]);
    await registerType('canary-missing', '/nonexistent/minimcp-canary-server', ['--stdio']);
  });

  afterAll(async () => {
    await stack?.close();
    github?.server.close();
    await db?.drop();
  });

  it('stores the keys without echoing them', async () => {
    await storeKey('github', FIRST_KEY);
    const listed = await stack.request('GET', '/v1/keys', { token: owner.token });
    expect(listed.status).toBe(200);
    await storeKey('canary-crash', FIRST_KEY);
    await storeKey('canary-fixture', FIRST_KEY);
    await storeKey('canary-missing', FIRST_KEY);
  });

  it('runs a github instance whose upstream echoes the key in a 401 and a 500', async () => {
    const created = await create('github');
    expectStatus(created, 201);
    const github1 = InstanceBody.parse(created.body);
    firstGithub = github1;
    instanceIds.github = github1.id;
    accessTokens.push(github1.access_token);

    const denied = await callTool(
      '401',
      github1.access_url,
      github1.access_token,
      'get_authenticated_user',
    );
    expect(denied.isError).toBe(true);
    const broken = await callTool(
      '500',
      github1.access_url,
      github1.access_token,
      'get_repository',
      {
        owner: 'octo',
        repo: 'broken',
      },
    );
    expect(broken.isError).toBe(true);
    // The key really travelled: the upstream saw it.
    expect(github.seen).toContain(`Bearer ${FIRST_KEY}`);
  });

  it('keeps the key out of a tool result whose upstream data carries it, clear or base64', async () => {
    const client = await stack.connectMcp(firstGithub.access_url, firstGithub.access_token);
    const leaky = await client.callTool({
      name: 'get_repository',
      arguments: { owner: 'octo', repo: 'leaky' },
    });
    await client.close();
    expect(leaky.isError).toBeFalsy();
    // Checked here rather than in the final sweep, so this gap shows as one failure.
    expect(
      findLeaks(secretForms(FIRST_KEY), [{ where: 'mcp 200', text: JSON.stringify(leaky) }]),
    ).toEqual([]);
  });

  it('rotates the access token: the old one is refused, the new one works', async () => {
    const id = instanceIds.github!;
    const rotated = await stack.request('POST', `/v1/instances/${id}/token`, {
      token: owner.token,
    });
    expectStatus(rotated, 200);
    const body = InstanceBody.parse(rotated.body);
    accessTokens.push(body.access_token);
    const old = await fetch(body.access_url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessTokens[0]}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: {
          protocolVersion: '2025-06-18',
          capabilities: {},
          clientInfo: { name: 'old-token', version: '1' },
        },
      }),
    });
    const oldText = await old.text();
    mcpAnswers.push({ where: 'mcp old token', text: oldText });
    // The API answered, so the rotation is done: the old token must be refused now.
    expect(old.status).toBe(401);
    const again = await callTool(
      'rotated',
      body.access_url,
      body.access_token,
      'get_authenticated_user',
    );
    expect(again.isError).toBe(true);
  });

  it('replaces the stored key; a new instance runs with the second key', async () => {
    await storeKey('github', SECOND_KEY);
    const created = await create('github');
    expectStatus(created, 201);
    const github2 = InstanceBody.parse(created.body);
    instanceIds.github2 = github2.id;
    accessTokens.push(github2.access_token);
    const denied = await callTool(
      'second key',
      github2.access_url,
      github2.access_token,
      'get_authenticated_user',
    );
    expect(denied.isError).toBe(true);
    expect(github.seen).toContain(`Bearer ${SECOND_KEY}`);
  });

  it('redacts the key a registered server prints on stderr while it runs', async () => {
    const created = await create('canary-fixture');
    expectStatus(created, 201);
    const fixture = InstanceBody.parse(created.body);
    instanceIds.fixture = fixture.id;
    accessTokens.push(fixture.access_token);
    const env = await callTool(
      'environment',
      fixture.access_url,
      fixture.access_token,
      'environment',
    );
    // The child got the key (both ways), without the answer carrying it.
    expect(JSON.stringify(env)).toContain('CANARY_KEY');
    expect(JSON.stringify(env)).toContain(`\\"keyLength\\":${FIRST_KEY.length}`);
    await callTool('log-secret', fixture.access_url, fixture.access_token, 'log-secret');
    await waitFor('the printed key in mcp_logs', async () =>
      (await logsOf(fixture.id)).some((m) => m === 'connecting with api key [REDACTED]'),
    );
  });

  it('puts a server that prints the key and crashes in error, with the key redacted', async () => {
    const created = await create('canary-crash');
    expectStatus(created, [201, 502]);
    let id: string;
    if (created.status === 201) {
      const body = InstanceBody.parse(created.body);
      accessTokens.push(body.access_token);
      id = body.id;
    } else {
      id = (
        await stack.request('GET', '/v1/instances?type=canary-crash', { token: owner.token })
      ).json<{ instances: { id: string }[] }>().instances[0]!.id;
    }
    instanceIds.crash = id;
    const failed = await waitFor('crash loop ends in error', async () => {
      const got = await stack.request('GET', `/v1/instances/${id}`, { token: owner.token });
      const body = got.json<{ status: string; error_message: string | null }>();
      return body.status === 'error' ? body : undefined;
    });
    expect(failed.error_message).toMatch(/exit/i);
    await waitFor('the crash line in mcp_logs', async () =>
      (await logsOf(id)).some((m) => m.includes('cannot reach upstream with key [REDACTED]')),
    );
  });

  it('fails a command that cannot be spawned without quoting its environment', async () => {
    const created = await create('canary-missing');
    expectStatus(created, 502);
    expect(created.json<{ type: string }>().type).toBe(`${PROBLEM_TYPE_BASE}instance-start-failed`);
  });

  it('reads logs and events, deletes an instance and a key', async () => {
    for (const id of Object.values(instanceIds)) {
      expect(
        (await stack.request('GET', `/v1/instances/${id}/logs?limit=100`, { token: owner.token }))
          .status,
      ).toBe(200);
      expect(
        (await stack.request('GET', `/v1/instances/${id}/events`, { token: owner.token })).status,
      ).toBe(200);
      expect(
        (await stack.request('GET', `/v1/instances/${id}`, { token: owner.token })).status,
      ).toBe(200);
    }
    expect((await stack.request('GET', '/v1/instances', { token: owner.token })).status).toBe(200);
    expect(
      (
        await stack.request('DELETE', `/v1/instances/${instanceIds.github2}`, {
          token: owner.token,
        })
      ).status,
    ).toBe(204);
    expect(
      (await stack.request('DELETE', '/v1/keys/canary-missing', { token: owner.token })).status,
    ).toBe(204);
  });

  it('leaves no form of either key anywhere, and tokens only as SHA-256', async () => {
    // What the agent keeps on disk while running (registry, spool, work folders)...
    const liveFiles = await readTree(stack.agentDataDir);
    // ...then everything it still had to write.
    await stack.stopAgent();
    const [rows, files] = await Promise.all([dumpDatabase(db.owner), readTree(stack.agentDataDir)]);
    expect(rows.filter((r) => r.where.startsWith('table mcp_logs ')).length).toBeGreaterThan(0);
    expect(stack.agentLogs.length).toBeGreaterThan(0);
    expect(stack.apiLogs.length).toBeGreaterThan(0);

    const everywhere = [
      ...rows,
      ...liveFiles,
      ...files,
      ...stack.agentLogs.map((text, i) => ({ where: `agent log line ${i}`, text })),
      ...stack.apiLogs.map((text, i) => ({ where: `api log line ${i}`, text })),
      ...stack.responses.map((r, i) => ({
        where: `answer ${i} ${r.method} ${r.path} ${r.status}`,
        text: r.text,
      })),
      ...mcpAnswers,
    ];
    for (const key of [FIRST_KEY, SECOND_KEY]) {
      const forms = [...secretForms(key), ...secretForms(key.slice('ghp_'.length))];
      expect(findLeaks(forms, everywhere)).toEqual([]);
    }

    // Tokens: clear text nowhere but in the answers that handed them out.
    const stored = [
      ...rows,
      ...liveFiles,
      ...files,
      ...stack.agentLogs.map((text, i) => ({ where: `agent log line ${i}`, text })),
      ...stack.apiLogs.map((text, i) => ({ where: `api log line ${i}`, text })),
    ];
    for (const token of [...accessTokens, owner.token, stack.adminToken]) {
      expect(findLeaks(secretForms(token), stored)).toEqual([]);
    }
    const hashes = await db.owner.anyFirst(
      sql.type(z.object({ access_token_hash: z.string() }))`
        SELECT access_token_hash FROM mcp_instances WHERE id = ${instanceIds.github!}`,
    );
    expect(hashes).toEqual([hashToken(accessTokens[1]!)]);
  });
});
