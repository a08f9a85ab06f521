// A keyed built-in MCP server under test (GitHub, Gmail, Figma): a scripted fake
// of its upstream API, the server spawned over stdio with its key and config and
// pointed at that fake, and the SDK client; `useServerUnderTest` adds the jest hooks.
import { afterAll, afterEach, beforeAll, expect } from '@jest/globals';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startMcpChild, type McpChild } from './mcp-child.js';

export interface ServerUnderTestOptions {
  /** The built-in server, by name (`github` runs dist/mcp-servers/github-mcp-server.js). */
  server: string;
  /** MINIMCP_API_KEY. */
  key: string;
  /** MINIMCP_CONFIG, before JSON encoding. */
  config: Record<string, unknown>;
  /** Headers every upstream request must carry (the fake's defaults). */
  upstreamHeaders?: Record<string, string>;
  /** Further environment, given the fake upstream's URL. */
  env?: (upstreamUrl: string) => Record<string, string>;
  /** Values no tool result may contain; the key when omitted. */
  secrets?: string[];
}

export interface ServerUnderTest {
  upstream: FakeUpstream;
  child: McpChild;
  /** Calls a tool and asserts that its result holds none of the secrets. */
  call(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

export async function startServerUnderTest(
  options: ServerUnderTestOptions,
): Promise<ServerUnderTest> {
  const upstream = await startFakeUpstream({ headers: options.upstreamHeaders });
  let child: McpChild;
  try {
    child = await startMcpChild(options.server, {
      MINIMCP_API_KEY: options.key,
      MINIMCP_UPSTREAM_URL: upstream.url,
      MINIMCP_CONFIG: JSON.stringify(options.config),
      ...options.env?.(upstream.url),
    });
  } catch (error) {
    await upstream.close();
    throw error;
  }
  const secrets = options.secrets ?? [options.key];
  return {
    upstream,
    child,
    async call(name, args = {}) {
      const result = await child.callTool(name, args);
      for (const secret of secrets) expect(JSON.stringify(result)).not.toContain(secret);
      return result;
    },
    async close() {
      try {
        await child.close();
      } finally {
        await upstream.close();
      }
    },
  };
}

/**
 * One server for the enclosing describe block: started before its tests, the
 * upstream's script verified after each test, closed after all. The returned
 * handle reads the running server, so use it inside tests and hooks only.
 */
export function useServerUnderTest(
  options: ServerUnderTestOptions,
): Omit<ServerUnderTest, 'close'> {
  let running: ServerUnderTest | undefined;
  const current = (): ServerUnderTest => {
    if (running === undefined) throw new Error(`the ${options.server} server is not running`);
    return running;
  };
  beforeAll(async () => {
    running = await startServerUnderTest(options);
  });
  afterEach(() => running?.upstream.verify());
  afterAll(async () => {
    await running?.close();
  });
  return {
    get upstream() {
      return current().upstream;
    },
    get child() {
      return current().child;
    },
    call: (name, args) => current().call(name, args),
  };
}
