// The gateway suites' stack: a real child behind a supervisor, a gateway on a
// free port of 127.0.0.1 with a fresh access token, and SDK clients over
// Streamable HTTP; each suite's harness stops what it started.
import path from 'node:path';
import { expect } from '@jest/globals';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult, ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { issueToken } from '../../core/tokens.js';
import {
  createGateway,
  type AccessRecord,
  type Gateway,
  type GatewayOptions,
} from '../../agent/gateway/gateway.js';
import { createSupervisor, type Supervisor } from '../../agent/child/supervisor.js';
import { tempDir, waitFor } from './agent-helpers.js';
import { textOf as toolText } from './mcp-child.js';

export interface GatewayStack {
  supervisor: Supervisor;
  gateway: Gateway;
  /** http://127.0.0.1:<port>, for the legacy paths and raw requests. */
  base: string;
  /** The Streamable HTTP endpoint, <base>/mcp. */
  url: URL;
  /** The instance's access token (plaintext; the gateway holds its hash). */
  token: string;
  /** Every access record the gateway emitted, in order. */
  access: AccessRecord[];
}

export interface StreamableConnected {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Resolves once the client's GET stream (server-to-client) is open. */
  streamOpen(): Promise<void>;
}

export interface GatewayHarness {
  /** A supervisor running `node <script> <args>` and a gateway in front of it. */
  startStack(
    script: string,
    args?: string[],
    gatewayOptions?: Partial<GatewayOptions>,
  ): Promise<GatewayStack>;
  /** Closes every stack started so far: the gateway, then its child. */
  stopStacks(): Promise<void>;
  /** Connects an SDK client over Streamable HTTP; closed by closeClients. */
  connect(
    stack: GatewayStack,
    options?: { name?: string; capabilities?: ClientCapabilities; token?: string },
  ): Promise<StreamableConnected>;
  /** Has `client` closed by closeClients (clients connected over other transports). */
  track(client: Client): void;
  /** Closes every client connected or tracked so far (run after each test). */
  closeClients(): Promise<void>;
}

/** One suite's harness; `tempPrefix` names its children's working directories. */
export function createGatewayHarness(tempPrefix: string): GatewayHarness {
  const stacks: GatewayStack[] = [];
  const clients: Client[] = [];
  return {
    async startStack(script, args = [], gatewayOptions = {}) {
      const supervisor = createSupervisor({
        command: process.execPath,
        args: [script, ...args],
        cwd: path.join(await tempDir(tempPrefix), 'work'),
        backoffInitialMs: 50,
      });
      await supervisor.start();
      const { token, hash } = issueToken('access');
      const access: AccessRecord[] = [];
      const gateway = await createGateway({
        port: 0,
        host: '127.0.0.1',
        tokenHash: hash,
        upstream: supervisor,
        onAccess: (record) => access.push(record),
        ...gatewayOptions,
      });
      const base = `http://127.0.0.1:${gateway.port}`;
      const stack = { supervisor, gateway, base, url: new URL(`${base}/mcp`), token, access };
      stacks.push(stack);
      return stack;
    },
    async stopStacks() {
      for (const stack of stacks.splice(0)) {
        await stack.gateway.close();
        await stack.supervisor.stop();
      }
    },
    async connect(stack, options = {}) {
      let getOpened: Promise<Response> | undefined;
      const transport = new StreamableHTTPClientTransport(stack.url, {
        requestInit: { headers: { Authorization: `Bearer ${options.token ?? stack.token}` } },
        fetch: (input, init) => {
          const response = fetch(input, init);
          if (init?.method === 'GET') getOpened = response;
          return response;
        },
      });
      const client = new Client(
        { name: options.name ?? 'test-client', version: '1.0.0' },
        { capabilities: options.capabilities ?? {} },
      );
      await client.connect(transport);
      clients.push(client);
      return {
        client,
        transport,
        streamOpen: async () => {
          const response = await waitFor('the GET stream request', () => getOpened);
          expect((await response).status).toBe(200);
        },
      };
    },
    track(client) {
      clients.push(client);
    },
    async closeClients() {
      await Promise.all(clients.splice(0).map((client) => client.close()));
    },
  };
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  return toolText(result as CallToolResult);
}

/**
 * Checks the access record of one `echo` tools/call (the one that sent
 * `secret-argument-42`) on a session: recorded with the HTTP status the
 * transport answers, without the call's arguments or result, and counted.
 * Returns the record for further checks.
 */
export async function expectEchoAccessRecorded(
  stack: GatewayStack,
  sessionId: string | undefined,
  before: ReturnType<GatewayStack['gateway']['counters']>,
  status: number,
): Promise<AccessRecord> {
  const record = await waitFor('the access record', () =>
    stack.access.find((entry) => entry.toolName === 'echo' && entry.sessionId === sessionId),
  );
  expect(record).toMatchObject({
    httpMethod: 'POST',
    mcpMethod: 'tools/call',
    status,
    rpcErrorCode: undefined,
  });
  expect(record.latencyMs).toBeGreaterThanOrEqual(0);
  expect(JSON.stringify(stack.access)).not.toContain('secret-argument-42');
  expect(JSON.stringify(stack.access)).not.toContain('Echo:');
  const after = stack.gateway.counters();
  expect(after.requests).toBeGreaterThan(before.requests);
  expect(after.bytesIn).toBeGreaterThan(before.bytesIn);
  expect(after.bytesOut).toBeGreaterThan(before.bytesOut);
  return record;
}
