// MCP endpoint conformance and isolation, through instances created with the
// API (two users, one instance each, on one agent): what the Streamable HTTP
// transport must refuse, and that a session belongs to the instance and the
// token it was opened with — one user's session id is no use with another
// instance's token, at either instance. Raw HTTP, so every status and header
// is the gateway's own. (The gateway's own suite, with more cases:
// test/integration/agent/gateway/gateway.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startFaultStack, type FaultStack } from '../support/fault-stack.js';
import { initializeRequest, postMcp } from '../support/mcp-http.js';

const Created = z.object({ id: z.string(), access_url: z.string(), access_token: z.string() });
type Created = z.infer<typeof Created>;

const INITIALIZE = initializeRequest();
const TOOLS_LIST = { jsonrpc: '2.0', id: 1, method: 'tools/list' };

const bearer = (instance: Created) => `Bearer ${instance.access_token}`;

/** Opens a session the way a client does (initialize, then initialized); its id. */
async function openSession(instance: Created): Promise<string> {
  const response = await postMcp(instance.access_url, INITIALIZE, {
    authorization: bearer(instance),
  });
  expect(response.status).toBe(200);
  await response.text();
  const session = response.headers.get('mcp-session-id');
  if (!session) throw new Error('initialize answered without an mcp-session-id');
  const initialized = await postMcp(
    instance.access_url,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { authorization: bearer(instance), 'mcp-session-id': session },
  );
  expect(initialized.status).toBe(202);
  return session;
}

describe('MCP endpoint conformance, through API-created instances', () => {
  let db: TestDatabase;
  let stack: FaultStack;
  let alices: Created;
  let bobs: Created;

  beforeAll(async () => {
    db = await createTestDatabase();
    stack = await startFaultStack({ appUrl: db.appUrl, agentUrl: db.agentUrl });
    const create = async () => {
      const user = await stack.createUser();
      const response = await stack.request('POST', '/v1/instances', {
        token: user.token,
        json: { type: 'demo' },
      });
      if (response.status !== 201)
        throw new Error(`create answered ${response.status}: ${response.text}`);
      return Created.parse(response.body);
    };
    alices = await create();
    bobs = await create();
  });

  afterAll(async () => {
    await stack?.close();
    await db?.drop();
  });

  it('serves a session opened with the right token (the control)', async () => {
    const session = await openSession(alices);
    const listed = await postMcp(alices.access_url, TOOLS_LIST, {
      authorization: bearer(alices),
      'mcp-session-id': session,
    });
    expect(listed.status).toBe(200);
    expect(await listed.text()).toContain('"tools"');
  });

  it('401 with WWW-Authenticate for a missing or a wrong token', async () => {
    const missing = await postMcp(alices.access_url, INITIALIZE, {});
    const wrong = await postMcp(alices.access_url, INITIALIZE, {
      authorization: 'Bearer mcp_wrong',
    });

    for (const response of [missing, wrong]) {
      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('403 for a foreign Origin, with the right token', async () => {
    const response = await postMcp(alices.access_url, INITIALIZE, {
      authorization: bearer(alices),
      origin: 'https://evil.example',
    });
    expect(response.status).toBe(403);
  });

  it('400 without a session id once one is required, 404 for an unknown one', async () => {
    await openSession(alices);
    const missing = await postMcp(alices.access_url, TOOLS_LIST, { authorization: bearer(alices) });
    const unknown = await postMcp(alices.access_url, TOOLS_LIST, {
      authorization: bearer(alices),
      'mcp-session-id': 'no-such-session',
    });
    expect(missing.status).toBe(400);
    expect(unknown.status).toBe(404);
  });

  it("refuses one user's session id with another instance's token, at either instance", async () => {
    const alicesSession = await openSession(alices);

    // At bob's instance with bob's token: the session is not one of bob's instance.
    const atBobs = await postMcp(bobs.access_url, TOOLS_LIST, {
      authorization: bearer(bobs),
      'mcp-session-id': alicesSession,
    });
    // At alice's instance with bob's token: the token is not alice's instance's.
    const atAlices = await postMcp(alices.access_url, TOOLS_LIST, {
      authorization: bearer(bobs),
      'mcp-session-id': alicesSession,
    });

    expect(atBobs.status).toBe(404);
    expect(await atBobs.text()).not.toContain('"tools"');
    expect(atAlices.status).toBe(401);
    expect(await atAlices.text()).not.toContain('"tools"');
    // Alice's session is untouched by the attempts.
    const still = await postMcp(alices.access_url, TOOLS_LIST, {
      authorization: bearer(alices),
      'mcp-session-id': alicesSession,
    });
    expect(still.status).toBe(200);
  });
});
