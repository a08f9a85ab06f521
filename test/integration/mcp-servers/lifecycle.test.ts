// Process lifecycle of the four built-in servers as the agent's supervisor sees
// it: they answer initialize, exit by themselves when stdin closes (even mid-call)
// or on SIGTERM, and refuse to start, with a clear and secret-free reason, on a
// missing key or bad config.
import { describe, expect, test } from '@jest/globals';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { serverScript } from '../../support/mcp-child.js';

interface Spawned {
  child: ChildProcessWithoutNullStreams;
  stderr: () => string;
  /** Resolves with the next JSON-RPC message the server writes. */
  nextMessage: () => Promise<{ id?: number; result?: unknown; error?: unknown }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnServer(name: string, env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [serverScript(name)], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  let buffer = '';
  const queue: unknown[] = [];
  const waiting: ((message: unknown) => void)[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let newline: number;
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const message: unknown = JSON.parse(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(message);
      else queue.push(message);
    }
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
  }));
  return {
    child,
    stderr: () => stderr,
    nextMessage: () =>
      new Promise((resolve) => {
        const queued = queue.shift();
        if (queued !== undefined) resolve(queued as never);
        else waiting.push(resolve as (message: unknown) => void);
      }),
    exited,
  };
}

const send = (s: Spawned, message: object): void => {
  s.child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', ...message })}\n`);
};

const initialize = async (s: Spawned): Promise<void> => {
  send(s, {
    id: 1,
    method: 'initialize',
    params: {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 't', version: '0' },
    },
  });
  const answer = await s.nextMessage();
  expect(answer).toMatchObject({ id: 1, result: { protocolVersion: '2025-06-18' } });
  send(s, { method: 'notifications/initialized' });
};

const keyedEnv: Record<string, Record<string, string>> = {
  demo: {},
  github: { MINIMCP_API_KEY: 'ghp_lifecycleTestKey000000000000000000' },
  gmail: { MINIMCP_API_KEY: 'ya29.lifecycle-test-access-token' },
  figma: { MINIMCP_API_KEY: 'figd_lifecycle-test-token' },
};

describe('built-in server lifecycle', () => {
  test.each(Object.keys(keyedEnv))(
    '%s answers initialize and exits with code 0 when its stdin closes',
    async (name) => {
      const server = spawnServer(name, {
        ...keyedEnv[name],
        MINIMCP_UPSTREAM_URL: 'http://127.0.0.1:9',
      });
      await initialize(server);

      server.child.stdin.end();

      // Nobody signals the child: only its own exit resolves this.
      expect(await server.exited).toEqual({ code: 0, signal: null });
    },
  );

  test('a server busy with a tool call still exits when stdin closes', async () => {
    const server = spawnServer('demo', {});
    await initialize(server);
    send(server, {
      id: 2,
      method: 'tools/call',
      params: { name: 'slow_count', arguments: { to: 10_000, delay_ms: 1_000 } },
    });

    server.child.stdin.end();

    expect(await server.exited).toEqual({ code: 0, signal: null });
  });

  test('SIGTERM stops a server cleanly', async () => {
    const server = spawnServer('demo', {});
    await initialize(server);

    server.child.kill('SIGTERM');

    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toContain('"reason":"SIGTERM"');
  });

  test('a keyed server without MINIMCP_API_KEY refuses to start and says why', async () => {
    const server = spawnServer('github', {});
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toContain('MINIMCP_API_KEY is not set');
  });

  test('invalid MINIMCP_CONFIG is refused with the reason', async () => {
    const server = spawnServer('figma', {
      MINIMCP_API_KEY: 'figd_lifecycle-test-token',
      MINIMCP_CONFIG: '{"timeout_ms": "soon"}',
    });
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toMatch(/MINIMCP_CONFIG is invalid.*timeout_ms/s);
  });

  test('a malformed Gmail key is refused without echoing the key', async () => {
    const key = '{"refresh_token": "1//secret-refresh-token-value", "client_id": ';
    const server = spawnServer('gmail', { MINIMCP_API_KEY: key });
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toContain('not valid JSON');
    expect(server.stderr()).not.toContain('secret-refresh-token-value');
  });
});
