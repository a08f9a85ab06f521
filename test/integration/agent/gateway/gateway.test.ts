// The per-port gateway end to end: real child processes behind a supervisor,
// real HTTP on 127.0.0.1, and the official SDK client over Streamable HTTP.
// @see https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#streamable-http
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ToolListChangedNotificationSchema,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { issueToken } from '../../../../core/tokens.js';
import { EVERYTHING_SERVER, fixture, waitFor } from '../../../support/agent-helpers.js';
import {
  createGatewayHarness,
  textOf,
  type GatewayStack as Stack,
  expectEchoAccessRecorded,
} from '../../../support/gateway-harness.js';
import { initializeRequest, postMcp } from '../../../support/mcp-http.js';

const { startStack, stopStacks, connect, closeClients } = createGatewayHarness('gw');

afterEach(closeClients);

function post(
  stack: Stack,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return postMcp(stack.url, body, { authorization: `Bearer ${stack.token}`, ...headers });
}

const INITIALIZE = initializeRequest();

async function rawSession(stack: Stack): Promise<string> {
  const response = await post(stack, INITIALIZE);
  expect(response.status).toBe(200);
  await response.json();
  return response.headers.get('mcp-session-id')!;
}

describe('the gateway in front of server-everything', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(EVERYTHING_SERVER, ['stdio'], { maxBodyBytes: 64 * 1024 });
  });
  afterAll(stopStacks);

  it('answers initialize from the child handshake, then lists and calls tools', async () => {
    const { client, transport } = await connect(stack);

    expect(transport.sessionId).toEqual(expect.any(String));
    expect(client.getServerVersion()?.name).toBe('mcp-servers/everything');
    expect(client.getServerCapabilities()).toHaveProperty('tools');
    expect(client.getInstructions()).toEqual(stack.supervisor.initializeResult?.instructions);
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    expect(textOf(result)).toBe('Echo: hello');
  });

  it('gives two clients calling tools at the same time their own answers', async () => {
    const [a, b] = await Promise.all([
      connect(stack, { name: 'a' }),
      connect(stack, { name: 'b' }),
    ]);

    // Both sessions use the same request ids (1, 2, ...): the gateway rewrites them.
    const calls = (client: Client, who: string) =>
      Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          client.callTool({ name: 'echo', arguments: { message: `${who}-${i}` } }),
        ),
      );
    const [fromA, fromB] = await Promise.all([calls(a.client, 'a'), calls(b.client, 'b')]);

    expect(fromA.map(textOf)).toEqual(Array.from({ length: 25 }, (_, i) => `Echo: a-${i}`));
    expect(fromB.map(textOf)).toEqual(Array.from({ length: 25 }, (_, i) => `Echo: b-${i}`));
  });

  it('routes progress notifications to the session and request that asked for them', async () => {
    const [a, b] = await Promise.all([
      connect(stack, { name: 'a' }),
      connect(stack, { name: 'b' }),
    ]);
    const progressA: Progress[] = [];
    const progressB: Progress[] = [];

    // Same progress token on both sides (the SDK uses the request id).
    const [resultA, resultB] = await Promise.all([
      a.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (progress) => progressA.push(progress) },
      ),
      b.client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.2, steps: 2 } },
        undefined,
        { onprogress: (progress) => progressB.push(progress) },
      ),
    ]);

    expect(textOf(resultA)).toContain('Steps: 3');
    expect(textOf(resultB)).toContain('Steps: 2');
    expect(progressA.map((progress) => [progress.progress, progress.total])).toEqual([
      [1, 3],
      [2, 3],
      [3, 3],
    ]);
    expect(progressB.map((progress) => [progress.progress, progress.total])).toEqual([
      [1, 2],
      [2, 2],
    ]);
  });

  it('routes a sampling request from the child to a client that can answer it', async () => {
    const sampler = await connect(stack, { name: 'sampler', capabilities: { sampling: {} } });
    sampler.client.setRequestHandler(CreateMessageRequestSchema, () => ({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled by the sampler' },
    }));
    await sampler.streamOpen();
    // A newer session that cannot sample: the request must not go to it.
    const caller = await connect(stack, { name: 'caller' });

    const result = await caller.client.callTool({
      name: 'trigger-sampling-request',
      arguments: { prompt: 'hello', maxTokens: 5 },
    });

    expect(textOf(result)).toContain('sampled by the sampler');
  });

  it('records access per request without arguments or results, and counts it', async () => {
    const { client, transport } = await connect(stack);
    const before = stack.gateway.counters();

    await client.callTool({ name: 'echo', arguments: { message: 'secret-argument-42' } });

    const record = await expectEchoAccessRecorded(stack, transport.sessionId, before, 200);
    const after = stack.gateway.counters();
    expect(after.lastAccessAt).toBeGreaterThanOrEqual(record.at);
  });

  it('answers with an SSE stream to a client that accepts only text/event-stream', async () => {
    const session = await rawSession(stack);

    const response = await post(
      stack,
      { jsonrpc: '2.0', id: 7, method: 'tools/list' },
      { accept: 'text/event-stream', 'mcp-session-id': session },
    );

    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const text = await response.text();
    expect(text).toMatch(/^event: message\ndata: \{.*"id":7.*\}\n\n$/s);
  });

  it('answers a batch of requests with a JSON array', async () => {
    const session = await rawSession(stack);

    const response = await post(
      stack,
      [
        { jsonrpc: '2.0', id: 'x', method: 'ping' },
        { jsonrpc: '2.0', id: 'y', method: 'tools/list' },
      ],
      { 'mcp-session-id': session },
    );

    const answers = (await response.json()) as Array<{ id: string }>;
    expect(answers.map((answer) => answer.id).sort()).toEqual(['x', 'y']);
  });

  describe('refusals', () => {
    it('401 with WWW-Authenticate for a missing token', async () => {
      const response = await post(stack, INITIALIZE, { authorization: '' });

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
    });

    it('401 with WWW-Authenticate for a wrong token, also for the SDK client', async () => {
      const response = await post(stack, INITIALIZE, { authorization: 'Bearer mcp_wrong' });

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
      await expect(connect(stack, { token: 'mcp_wrong' })).rejects.toMatchObject({ code: 401 });
    });

    it('403 for a foreign Origin, while a loopback origin is served', async () => {
      const foreign = await post(stack, INITIALIZE, { origin: 'http://evil.example' });
      const local = await post(stack, INITIALIZE, { origin: 'http://localhost:6274' });

      expect(foreign.status).toBe(403);
      expect(local.status).toBe(200);
      expect(local.headers.get('access-control-allow-origin')).toBe('http://localhost:6274');
    });

    it('400 without a session id after initialize, 404 for an unknown session', async () => {
      await rawSession(stack);

      const missing = await post(stack, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
      const unknown = await post(
        stack,
        { jsonrpc: '2.0', id: 1, method: 'tools/list' },
        { 'mcp-session-id': 'not-a-session' },
      );

      expect(missing.status).toBe(400);
      expect(unknown.status).toBe(404);
    });

    it('400 for an unsupported MCP-Protocol-Version header', async () => {
      const session = await rawSession(stack);

      const response = await post(
        stack,
        { jsonrpc: '2.0', id: 1, method: 'tools/list' },
        { 'mcp-session-id': session, 'mcp-protocol-version': '1999-01-01' },
      );

      expect(response.status).toBe(400);
    });

    it('413 for a body over the limit, while a large one under it is served', async () => {
      const session = await rawSession(stack);
      const call = (size: number) =>
        post(
          stack,
          {
            jsonrpc: '2.0',
            id: 1,
            method: 'tools/call',
            params: { name: 'echo', arguments: { message: 'x'.repeat(size) } },
          },
          { 'mcp-session-id': session },
        );

      const under = await call(32 * 1024);
      const over = await call(100 * 1024);

      expect(under.status).toBe(200);
      expect(over.status).toBe(413);
    });

    it('400 for a body that is not JSON-RPC', async () => {
      const session = await rawSession(stack);

      const notJson = await post(stack, '{"jsonrpc":', { 'mcp-session-id': session });
      const notRpc = await post(stack, { hello: 'world' }, { 'mcp-session-id': session });

      expect(notJson.status).toBe(400);
      expect(notRpc.status).toBe(400);
    });
  });

  it('DELETE ends a session: its id is unknown afterwards', async () => {
    const { transport } = await connect(stack);
    const session = transport.sessionId!;

    await transport.terminateSession();
    const after = await post(
      stack,
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-session-id': session },
    );

    expect(after.status).toBe(404);
  });
});

describe('the gateway in front of an SDK fixture server', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(fixture('mcp-fixture.mjs'));
  });
  afterAll(stopStacks);

  it('translates a cancellation to the child-side id of the session that sent it', async () => {
    const [a, b] = await Promise.all([
      connect(stack, { name: 'a' }),
      connect(stack, { name: 'b' }),
    ]);
    const abortA = new AbortController();
    const abortB = new AbortController();
    const waitA = a.client.callTool({ name: 'wait', arguments: { label: 'a' } }, undefined, {
      signal: abortA.signal,
    });
    const waitB = b.client.callTool({ name: 'wait', arguments: { label: 'b' } }, undefined, {
      signal: abortB.signal,
    });
    const cancelled = async () =>
      JSON.parse(textOf(await a.client.callTool({ name: 'cancellations' }))) as string[];
    // Both requests have reached the child before anything is cancelled.
    await waitFor('both waits in flight', () => stack.gateway.counters().inFlight === 2);

    abortA.abort();
    await expect(waitA).rejects.toThrow();
    const afterA = await waitFor('the child to see the cancellation', async () => {
      const labels = await cancelled();
      return labels.length > 0 && labels;
    });
    expect(afterA).toEqual(['a']);

    abortB.abort();
    await expect(waitB).rejects.toThrow();
    const afterB = await waitFor('the second cancellation', async () => {
      const labels = await cancelled();
      return labels.length > 1 && labels;
    });
    expect(afterB).toEqual(['a', 'b']);
  });

  it('fans list_changed notifications out to every session with a stream', async () => {
    const [a, b] = await Promise.all([
      connect(stack, { name: 'a' }),
      connect(stack, { name: 'b' }),
    ]);
    await Promise.all([a.streamOpen(), b.streamOpen()]);
    let heardA = 0;
    let heardB = 0;
    a.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      heardA += 1;
    });
    b.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      heardB += 1;
    });

    await a.client.callTool({ name: 'add-tool', arguments: { name: 'added-later' } });

    await waitFor('both sessions to hear of the change', () => heardA > 0 && heardB > 0);
    const { tools } = await b.client.listTools();
    expect(tools.map((tool) => tool.name)).toContain('added-later');
  });

  it('fails a request in flight when the child dies, and serves again after the restart', async () => {
    const { client } = await connect(stack);
    const pid = stack.supervisor.pid!;
    const inFlight = client.callTool({ name: 'wait', arguments: { label: 'doomed' } });
    await waitFor('the wait to reach the child', () => stack.gateway.counters().inFlight === 1);

    process.kill(pid, 'SIGKILL');

    await expect(inFlight).rejects.toThrow(/killed by SIGKILL/);
    await waitFor(
      'the restart',
      () => stack.supervisor.state === 'ready' && stack.supervisor.pid !== pid,
    );
    expect(stack.supervisor.restarts).toBe(1);
    const result = await client.callTool({ name: 'cancellations' });
    expect(textOf(result)).toBe('[]');
  });

  it('refuses the old token and serves the new one after a token rotation', async () => {
    const { client } = await connect(stack);
    const rotated = issueToken('access');

    stack.gateway.setTokenHash(rotated.hash);
    const old = stack.token;
    stack.token = rotated.token;

    await expect(client.listTools()).rejects.toThrow(/401|invalid access token/);
    expect((await post({ ...stack, token: old }, INITIALIZE)).status).toBe(401);
    expect((await post(stack, INITIALIZE)).status).toBe(200);
  });

  it('close() answers what is in flight, closes the port and every session; idempotent', async () => {
    const own = await startStack(fixture('mcp-fixture.mjs'));
    const { client } = await connect(own);
    const inFlight = client.callTool({ name: 'wait', arguments: { label: 'at-close' } });
    await waitFor('the wait to reach the child', () => own.gateway.counters().inFlight === 1);

    await Promise.all([own.gateway.close(), own.gateway.close()]);

    await expect(inFlight).rejects.toThrow(/shutting down/);
    await expect(post(own, INITIALIZE)).rejects.toThrow();
    expect(own.gateway.sessionCount).toBe(0);
  });
});
