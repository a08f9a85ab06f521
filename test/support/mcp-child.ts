// Spawns a built-in MCP server from dist/ the way the agent does (`node <file>`
// over stdio) and connects the real SDK client; collects its stderr.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StdioClientTransport,
  getDefaultEnvironment,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { fileURLToPath } from 'node:url';

export const serverScript = (name: string): string =>
  fileURLToPath(new URL(`../../dist/mcp-servers/${name}-mcp-server.js`, import.meta.url));

export interface McpChild {
  client: Client;
  /** Everything the child wrote to stderr so far. */
  stderr(): string;
  /** Resolves once stderr holds a line matching `pattern`. */
  waitForStderr(pattern: RegExp): Promise<string>;
  callTool(name: string, args?: Record<string, unknown>): Promise<CallToolResult>;
  close(): Promise<void>;
}

export async function startMcpChild(name: string, env: Record<string, string>): Promise<McpChild> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [serverScript(name)],
    env: { ...getDefaultEnvironment(), ...env },
    stderr: 'pipe',
  });
  let stderr = '';
  const waiters = new Set<() => void>();
  transport.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    for (const wake of waiters) wake();
  });
  const client = new Client({ name: 'minimcp-test', version: '0.0.0' });
  await client.connect(transport);

  return {
    client,
    stderr: () => stderr,
    waitForStderr(pattern) {
      return new Promise((resolve) => {
        const check = (): void => {
          const line = stderr.split('\n').find((l) => pattern.test(l));
          if (line === undefined) return;
          waiters.delete(check);
          resolve(line);
        };
        waiters.add(check);
        check();
      });
    },
    async callTool(toolName, args = {}) {
      return (await client.callTool({ name: toolName, arguments: args })) as CallToolResult;
    },
    close: () => client.close(),
  };
}

/** The text of a tool result's first content item. */
export function textOf(result: CallToolResult): string {
  const first = result.content[0];
  return first?.type === 'text' ? first.text : '';
}
