// The benchmarks' node:http `fetch` under the official SDK client, against the
// SDK's own Streamable HTTP server on 127.0.0.1 in both answer modes: SSE
// streams (as supergateway answers) and plain JSON (as MiniMCP's gateway does).
import { randomUUID } from 'node:crypto';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { z } from 'zod';
import { nodeHttpFetch } from '../../../../bench/support/http-fetch.js';

interface TestServer {
  url: URL;
  /** Requests seen, as "METHOD accept-header". */
  requests: string[];
  /** GET event streams the server saw closed by the client. */
  closedStreams: () => number;
  close(): Promise<void>;
}

/** One stateful MCP session per initialize, an `echo` tool, on a free loopback port. */
async function startServer(mode: 'sse' | 'json'): Promise<TestServer> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const requests: string[] = [];
  let closedStreams = 0;
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.headers.accept ?? ''}`);
    if (req.method === 'GET') res.on('close', () => closedStreams++);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const body = chunks.length
          ? (JSON.parse(Buffer.concat(chunks).toString()) as unknown)
          : undefined;
        const sessionId = req.headers['mcp-session-id'];
        let transport = typeof sessionId === 'string' ? transports.get(sessionId) : undefined;
        if (transport === undefined) {
          transport = new StreamableHTTPServerTransport({
            sessionIdGenerator: randomUUID,
            enableJsonResponse: mode === 'json',
            onsessioninitialized: (id) => {
              transports.set(id, transport!);
            },
          });
          const mcp = new McpServer({ name: 'fetch-test', version: '1.0.0' });
          mcp.registerTool('echo', { inputSchema: { message: z.string() } }, ({ message }) => ({
            content: [{ type: 'text', text: `echo: ${message}` }],
          }));
          await mcp.connect(transport);
        }
        await transport.handleRequest(req, res, body);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: new URL(`http://127.0.0.1:${port}/mcp`),
    requests,
    closedStreams: () => closedStreams,
    async close() {
      for (const transport of transports.values()) await transport.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function waitUntil(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++)
    await new Promise((resolve) => setTimeout(resolve, 10));
}

describe.each(['sse', 'json'] as const)('nodeHttpFetch with %s answers', (mode) => {
  it('carries the SDK client through initialize, concurrent calls and close', async () => {
    const server = await startServer(mode);
    servers.push(server);
    const transport = new StreamableHTTPClientTransport(server.url, {
      requestInit: { headers: { Origin: 'http://localhost' } },
      fetch: nodeHttpFetch,
    });
    const client = new Client({ name: 'fetch-test', version: '1.0.0' });
    await client.connect(transport);
    expect(transport.sessionId).toMatch(/^[0-9a-f-]{36}$/);

    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.callTool({ name: 'echo', arguments: { message: `m${i}` } }),
      ),
    );
    expect(answers.map((answer) => answer.content)).toEqual(
      Array.from({ length: 50 }, (_, i) => [{ type: 'text', text: `echo: m${i}` }]),
    );
    // Each request took its abort listener off the transport's shared signal when it ended.
    const signal = (transport as unknown as { _abortController?: AbortController })._abortController
      ?.signal;
    expect(signal).toBeDefined();
    await waitUntil(() => getEventListeners(signal!, 'abort').length <= 1);
    expect(getEventListeners(signal!, 'abort').length).toBeLessThanOrEqual(1);

    // The standalone GET event stream was opened, and close() ends it.
    await waitUntil(() => server.requests.some((line) => line.startsWith('GET')));
    expect(server.requests.filter((line) => line.startsWith('GET'))).toEqual([
      'GET text/event-stream',
    ]);
    await client.close();
    await waitUntil(() => server.closedStreams() === 1);
    expect(server.closedStreams()).toBe(1);
  });

  it('hands an error answer over with its status and body', async () => {
    const server = await startServer(mode);
    servers.push(server);
    const response = await nodeHttpFetch(server.url, {
      method: 'POST',
      headers: new Headers({
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 'no-such-session',
      }),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toMatch(/application\/json/);
    expect(await response.json()).toMatchObject({ jsonrpc: '2.0', error: { code: -32000 } });
  });
});

it('rejects with an AbortError when the signal is already aborted', async () => {
  const server = await startServer('json');
  servers.push(server);
  const controller = new AbortController();
  controller.abort();
  await expect(nodeHttpFetch(server.url, { signal: controller.signal })).rejects.toMatchObject({
    name: 'AbortError',
  });
});
