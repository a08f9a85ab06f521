// The gateway's older HTTP+SSE transport (/sse + /messages) end to end: real
// child processes behind a supervisor, real HTTP on 127.0.0.1, the SDK's
// SSEClientTransport beside its Streamable HTTP client, and raw requests for
// the wire format, the refusals and the Host check.
// @see https://modelcontextprotocol.io/specification/2024-11-05/basic/transports#http-with-sse
import { request as httpRequest } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import {
  ResultSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { EVERYTHING_SERVER, fixture, waitFor } from '../../../support/agent-helpers.js';
import {
  createGatewayHarness,
  textOf,
  type GatewayStack as Stack,
  expectEchoAccessRecorded,
} from '../../../support/gateway-harness.js';
import { initializeRequest } from '../../../support/mcp-http.js';

const { startStack, stopStacks, connect, track, closeClients } = createGatewayHarness('legacy-sse');

afterEach(closeClients);

interface LegacyConnected {
  client: Client;
  transport: SSEClientTransport;
  /** The session id the gateway put in the endpoint event (seen in the POST URLs). */
  sessionId(): string;
}

async function connectLegacy(
  stack: Stack,
  options: { name?: string; token?: string } = {},
): Promise<LegacyConnected> {
  const postedTo: string[] = [];
  const transport = new SSEClientTransport(new URL(`${stack.base}/sse`), {
    // The transport sends these headers on the GET that opens the stream too.
    requestInit: { headers: { Authorization: `Bearer ${options.token ?? stack.token}` } },
    fetch: (input, init) => {
      if (init?.method === 'POST') postedTo.push(String(input));
      return fetch(input, init);
    },
  });
  const client = new Client({ name: options.name ?? 'legacy-client', version: '1.0.0' });
  await client.connect(transport);
  track(client);
  return {
    client,
    transport,
    sessionId: () => new URL(postedTo[0]!).searchParams.get('sessionId')!,
  };
}

async function connectStreamable(stack: Stack): Promise<Client> {
  return (await connect(stack, { name: 'streamable-client' })).client;
}

interface SseEvent {
  event: string;
  data: string;
}

/** A GET /sse read frame by frame, without the SDK: the wire format itself. */
async function openRawStream(stack: Stack, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const response = await fetch(`${stack.base}/sse`, {
    headers: { accept: 'text/event-stream', authorization: `Bearer ${stack.token}`, ...headers },
    signal: abort.signal,
  });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  const next = async (): Promise<SseEvent> => {
    for (;;) {
      const end = buffered.indexOf('\n\n');
      if (end !== -1) {
        const frame = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (frame.startsWith(':')) continue; // a keep-alive comment
        const field = (name: string) =>
          frame
            .split('\n')
            .find((line) => line.startsWith(`${name}: `))
            ?.slice(name.length + 2) ?? '';
        return { event: field('event'), data: field('data') };
      }
      const { value, done } = await reader.read();
      if (done) throw new Error('the stream ended');
      buffered += value;
    }
  };
  return {
    response,
    next,
    /** The next `message` event answering this id (the child may say other things too). */
    async answer(id: number): Promise<Record<string, unknown>> {
      for (;;) {
        const { event, data } = await next();
        const message = JSON.parse(data) as Record<string, unknown>;
        if (event === 'message' && message.id === id) return message;
      }
    },
    close: () => abort.abort(),
  };
}

function postMessage(
  stack: Stack,
  endpoint: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(new URL(endpoint, stack.base), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${stack.token}`,
      ...headers,
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** node:http rather than fetch: fetch does not let a caller choose the Host header. */
function rawRequest(
  stack: Stack,
  options: { path: string; method: string; headers: Record<string, string>; body?: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${stack.base}${options.path}`,
      { method: options.method, headers: options.headers },
      (res) => {
        // A stream that was opened is not read to its end: the status is enough.
        if (res.headers['content-type'] === 'text/event-stream') {
          resolve({ status: res.statusCode!, body: '' });
          res.destroy();
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.once('error', reject);
    req.end(options.body);
  });
}

const INITIALIZE = initializeRequest('2024-11-05');

describe('the HTTP+SSE transport in front of server-everything', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(EVERYTHING_SERVER, ['stdio'], { maxBodyBytes: 64 * 1024 });
  });
  afterAll(stopStacks);

  it('serves the SDK SSE client: initialize, tools/list, tools/call', async () => {
    const { client } = await connectLegacy(stack);

    expect(client.getServerVersion()?.name).toBe('mcp-servers/everything');
    expect(client.getServerCapabilities()).toHaveProperty('tools');
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(expect.arrayContaining(['echo', 'get-sum']));
    const result = await client.callTool({ name: 'echo', arguments: { message: 'hello' } });
    expect(textOf(result)).toBe('Echo: hello');
  });

  it('speaks the 2024-11-05 wire format: endpoint event, 202 for POSTs, answers as message events', async () => {
    const stream = await openRawStream(stack);

    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream');
    const endpoint = await stream.next();
    expect(endpoint.event).toBe('endpoint');
    expect(endpoint.data).toMatch(/^\/messages\?sessionId=[0-9a-f-]{36}$/);
    const initialize = await postMessage(stack, endpoint.data, INITIALIZE);
    expect(initialize.status).toBe(202);
    expect(await initialize.text()).toBe('Accepted');
    const initialized = await stream.answer(0);
    expect(initialized.result).toMatchObject({
      protocolVersion: '2024-11-05',
      serverInfo: { name: 'mcp-servers/everything' },
    });
    const notified = await postMessage(stack, endpoint.data, {
      jsonrpc: '2.0',
      method: 'notifications/initialized',
    });
    const listed = await postMessage(stack, endpoint.data, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/list',
    });

    expect(notified.status).toBe(202);
    expect(listed.status).toBe(202);
    const answer = await stream.answer(1);
    expect((answer.result as { tools: unknown[] }).tools.length).toBeGreaterThan(0);
    stream.close();
  });

  it('serves a legacy and a Streamable HTTP client at the same time, each its own answers', async () => {
    const [legacy, streamable] = await Promise.all([
      connectLegacy(stack, { name: 'legacy' }),
      connectStreamable(stack),
    ]);

    // Both sessions use the same request ids: the multiplexer rewrites them.
    const calls = (client: Client, who: string) =>
      Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          client.callTool({ name: 'echo', arguments: { message: `${who}-${i}` } }),
        ),
      );
    const [fromLegacy, fromStreamable] = await Promise.all([
      calls(legacy.client, 'legacy'),
      calls(streamable, 'streamable'),
    ]);

    expect(fromLegacy.map(textOf)).toEqual(
      Array.from({ length: 25 }, (_, i) => `Echo: legacy-${i}`),
    );
    expect(fromStreamable.map(textOf)).toEqual(
      Array.from({ length: 25 }, (_, i) => `Echo: streamable-${i}`),
    );
  });

  it('records access for legacy POSTs without arguments or results, and counts them', async () => {
    const legacy = await connectLegacy(stack);
    const before = stack.gateway.counters();

    await legacy.client.callTool({ name: 'echo', arguments: { message: 'secret-argument-42' } });

    await expectEchoAccessRecorded(stack, legacy.sessionId(), before, 202);
  });

  it('records the JSON-RPC error code of an answer that is an error', async () => {
    const legacy = await connectLegacy(stack);

    await expect(legacy.client.callTool({ name: 'no-such-tool' })).resolves.toMatchObject({
      isError: true,
    });
    await expect(
      legacy.client.request({ method: 'no/such-method', params: {} }, ResultSchema),
    ).rejects.toThrow();

    const record = await waitFor('the access record of the unknown method', () =>
      stack.access.find(
        (entry) => entry.mcpMethod === 'no/such-method' && entry.sessionId === legacy.sessionId(),
      ),
    );
    expect(record).toMatchObject({ status: 202, rpcErrorCode: -32601 });
  });

  describe('refusals', () => {
    it('401 with WWW-Authenticate on /sse and /messages for a missing or wrong token', async () => {
      const stream = await openRawStream(stack);
      const { data: endpoint } = await stream.next();

      const noToken = await fetch(`${stack.base}/sse`, { headers: { authorization: '' } });
      const wrongToken = await fetch(`${stack.base}/sse`, {
        headers: { authorization: 'Bearer mcp_wrong' },
      });
      const postNoToken = await postMessage(stack, endpoint, INITIALIZE, { authorization: '' });
      const postWrongToken = await postMessage(stack, endpoint, INITIALIZE, {
        authorization: 'Bearer mcp_wrong',
      });

      for (const response of [noToken, postNoToken]) {
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer realm="minimcp"/);
      }
      for (const response of [wrongToken, postWrongToken]) {
        expect(response.status).toBe(401);
        expect(response.headers.get('www-authenticate')).toContain('error="invalid_token"');
      }
      stream.close();
    });

    it('401 for the SDK SSE client with a wrong token', async () => {
      await expect(connectLegacy(stack, { token: 'mcp_wrong' })).rejects.toMatchObject({
        code: 401,
      });
    });

    it('403 for a foreign Origin on /sse and /messages, while a loopback origin is served', async () => {
      const stream = await openRawStream(stack);
      const { data: endpoint } = await stream.next();

      const foreignStream = await fetch(`${stack.base}/sse`, {
        headers: { authorization: `Bearer ${stack.token}`, origin: 'http://evil.example' },
      });
      const foreignPost = await postMessage(stack, endpoint, INITIALIZE, {
        origin: 'http://evil.example',
      });
      const localPost = await postMessage(stack, endpoint, INITIALIZE, {
        origin: 'http://localhost:6274',
      });

      expect(foreignStream.status).toBe(403);
      expect(foreignPost.status).toBe(403);
      expect(localPost.status).toBe(202);
      expect(localPost.headers.get('access-control-allow-origin')).toBe('http://localhost:6274');
      stream.close();
    });

    it('404 for an unknown sessionId, 400 without one', async () => {
      const unknown = await postMessage(stack, '/messages?sessionId=not-a-session', INITIALIZE);
      const missing = await postMessage(stack, '/messages', INITIALIZE);

      expect(unknown.status).toBe(404);
      expect(missing.status).toBe(400);
    });

    it('400 for a request before initialize', async () => {
      const stream = await openRawStream(stack);
      const { data: endpoint } = await stream.next();

      const early = await postMessage(stack, endpoint, {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/list',
      });

      expect(early.status).toBe(400);
      expect(await early.text()).toContain('send initialize first');
      stream.close();
    });

    it('413 for a body over the limit, 400 for one that is not JSON-RPC', async () => {
      const stream = await openRawStream(stack);
      const { data: endpoint } = await stream.next();
      expect((await postMessage(stack, endpoint, INITIALIZE)).status).toBe(202);

      const over = await postMessage(stack, endpoint, {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'x'.repeat(100 * 1024) } },
      });
      const notRpc = await postMessage(stack, endpoint, { hello: 'world' });

      expect(over.status).toBe(413);
      expect(notRpc.status).toBe(400);
      stream.close();
    });

    it('405 for a method the endpoint does not take', async () => {
      const postToStream = await fetch(`${stack.base}/sse`, {
        method: 'POST',
        headers: { authorization: `Bearer ${stack.token}` },
      });
      const getMessages = await fetch(`${stack.base}/messages?sessionId=x`, {
        headers: { authorization: `Bearer ${stack.token}` },
      });

      expect(postToStream.status).toBe(405);
      expect(postToStream.headers.get('allow')).toBe('GET');
      expect(getMessages.status).toBe(405);
      expect(getMessages.headers.get('allow')).toBe('POST');
    });
  });
});

describe('the HTTP+SSE session lifetime, in front of an SDK fixture server', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(fixture('mcp-fixture.mjs'));
  });
  afterAll(stopStacks);

  it('ends the session when its stream closes: the request in flight is cancelled at the child', async () => {
    const before = stack.gateway.sessionCount;
    const legacy = await connectLegacy(stack);
    expect(stack.gateway.sessionCount).toBe(before + 1);
    const endpoint = `/messages?sessionId=${legacy.sessionId()}`;
    const inFlight = legacy.client.callTool({ name: 'wait', arguments: { label: 'orphaned' } });
    await waitFor('the wait to reach the child', () => stack.gateway.counters().inFlight === 1);

    await legacy.transport.close();

    await expect(inFlight).rejects.toThrow();
    await waitFor('the session to end', () => stack.gateway.sessionCount === before);
    expect(stack.gateway.counters().inFlight).toBe(0);
    const observer = await connectStreamable(stack);
    const cancelled = await waitFor('the child to see the cancellation', async () => {
      const labels = JSON.parse(
        textOf(await observer.callTool({ name: 'cancellations' })),
      ) as string[];
      return labels.includes('orphaned') && labels;
    });
    expect(cancelled).toContain('orphaned');
    expect((await postMessage(stack, endpoint, INITIALIZE)).status).toBe(404);
    const record = stack.access.find(
      (entry) => entry.toolName === 'wait' && entry.sessionId === legacy.sessionId(),
    );
    expect(record?.status).toBe(499);
  });

  it('fans list_changed out to legacy and Streamable HTTP sessions alike', async () => {
    const legacy = await connectLegacy(stack);
    const streamable = await connectStreamable(stack);
    let heard = 0;
    legacy.client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      heard += 1;
    });

    await streamable.callTool({ name: 'add-tool', arguments: { name: 'added-for-legacy' } });

    await waitFor('the legacy session to hear of the change', () => heard > 0);
    const { tools } = await legacy.client.listTools();
    expect(tools.map((tool) => tool.name)).toContain('added-for-legacy');
  });

  it('close() answers a legacy request in flight and ends its stream', async () => {
    const own = await startStack(fixture('mcp-fixture.mjs'));
    const legacy = await connectLegacy(own);
    const inFlight = legacy.client.callTool({ name: 'wait', arguments: { label: 'at-close' } });
    await waitFor('the wait to reach the child', () => own.gateway.counters().inFlight === 1);

    await own.gateway.close();

    await expect(inFlight).rejects.toThrow(/shutting down/);
    expect(own.gateway.sessionCount).toBe(0);
  });
});

describe('the Host check (DNS rebinding protection)', () => {
  afterAll(stopStacks);

  const initialize = (stack: Stack, host: string) =>
    rawRequest(stack, {
      path: '/mcp',
      method: 'POST',
      headers: {
        host,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        authorization: `Bearer ${stack.token}`,
      },
      body: JSON.stringify(INITIALIZE),
    });
  const openStream = (stack: Stack, host: string) =>
    rawRequest(stack, {
      path: '/sse',
      method: 'GET',
      headers: { host, accept: 'text/event-stream', authorization: `Bearer ${stack.token}` },
    });

  it('on a loopback address, serves loopback names only, on both transports', async () => {
    const stack = await startStack(fixture('mcp-fixture.mjs'));
    const port = stack.gateway.port;

    const rebound = await initialize(stack, `attacker.example:${port}`);
    const reboundStream = await openStream(stack, `attacker.example:${port}`);
    const tricky = await initialize(stack, `attacker.example@127.0.0.1:${port}`);
    const byName = await initialize(stack, `localhost:${port}`);
    const byAddress = await openStream(stack, `127.0.0.1:${port}`);

    expect(rebound.status).toBe(403);
    expect(rebound.body).toContain('host attacker.example');
    expect(reboundStream.status).toBe(403);
    expect(tricky.status).toBe(403);
    expect(byName.status).toBe(200);
    expect(byAddress.status).toBe(200);
  });

  it('serves the configured host names besides the loopback ones', async () => {
    const stack = await startStack(fixture('mcp-fixture.mjs'), [], {
      allowedHosts: ['MCP.example.test'],
    });
    const port = stack.gateway.port;

    const configured = await initialize(stack, `mcp.example.test:${port}`);
    const loopback = await initialize(stack, `127.0.0.1:${port}`);
    const other = await openStream(stack, `other.example.test:${port}`);

    expect(configured.status).toBe(200);
    expect(loopback.status).toBe(200);
    expect(other.status).toBe(403);
  });
});
