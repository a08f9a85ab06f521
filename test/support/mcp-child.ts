// Spawns a built-in MCP server from dist/ the way the agent does (`node <file>`
// over stdio), either behind the real SDK client or as a bare process that the
// test speaks JSON-RPC lines to; collects its stderr.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  StdioClientTransport,
  getDefaultEnvironment,
} from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
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

/** A JSON-RPC message as the server wrote it. */
export type JsonRpcMessage = Record<string, unknown> & { id?: number };

export interface ServerProcess {
  process: ChildProcess;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Writes one JSON-RPC message (`jsonrpc: '2.0'` added) to the server's stdin. */
  send(message: object): void;
  /** Resolves with the next message the server writes that `match` accepts. */
  nextMessage(match?: (message: JsonRpcMessage) => boolean): Promise<JsonRpcMessage>;
  /** Sends a request and resolves with the answer of the same id. */
  request(id: number, method: string, params?: object): Promise<JsonRpcMessage>;
  /** Writes `text` to the binding pipe (fd 3) and closes it; needs `bindingPipe`. */
  bind(text: string): void;
  /** Closes the server's stdin, as the agent does when an instance stops. */
  endInput(): void;
}

/** What a client sends in `initialize`. */
export const INITIALIZE_PARAMS = {
  protocolVersion: '2025-06-18',
  capabilities: {},
  clientInfo: { name: 't', version: '0' },
};

/**
 * Spawns a built-in server with only PATH and `env` in its environment and no
 * client in front. `bindingPipe` opens fd 3 and names it in MINIMCP_BINDING_FD,
 * as the agent's warm pool does.
 */
export function spawnServerProcess(
  name: string,
  env: Record<string, string>,
  options: { bindingPipe?: boolean } = {},
): ServerProcess {
  const child = spawn(process.execPath, [serverScript(name)], {
    env: {
      PATH: process.env.PATH ?? '',
      ...(options.bindingPipe ? { MINIMCP_BINDING_FD: '3' } : {}),
      ...env,
    },
    stdio: options.bindingPipe ? ['pipe', 'pipe', 'pipe', 'pipe'] : ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const unclaimed: JsonRpcMessage[] = [];
  const waiting: {
    match: (message: JsonRpcMessage) => boolean;
    resolve: (m: JsonRpcMessage) => void;
  }[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const message = JSON.parse(buffer.slice(0, newline)) as JsonRpcMessage;
      buffer = buffer.slice(newline + 1);
      const waiter = waiting.findIndex((w) => w.match(message));
      if (waiter === -1) unclaimed.push(message);
      else waiting.splice(waiter, 1)[0]!.resolve(message);
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  const send = (message: object): void => {
    child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
  };
  const nextMessage: ServerProcess['nextMessage'] = (match = () => true) =>
    new Promise((resolve) => {
      const queued = unclaimed.findIndex(match);
      if (queued === -1) waiting.push({ match, resolve });
      else resolve(unclaimed.splice(queued, 1)[0]!);
    });
  return {
    process: child,
    stderr: () => stderr,
    exited,
    send,
    nextMessage,
    request(id, method, params = {}) {
      const answer = nextMessage((message) => message.id === id);
      send({ id, method, params });
      return answer;
    },
    bind: (text) => (child.stdio[3] as Writable).end(text),
    endInput: () => child.stdin!.end(),
  };
}

/** The initialize handshake: the server's answer, after which the client says it is initialized. */
export async function initialize(server: ServerProcess): Promise<JsonRpcMessage> {
  const answer = await server.request(1, 'initialize', INITIALIZE_PARAMS);
  server.send({ method: 'notifications/initialized' });
  return answer;
}
