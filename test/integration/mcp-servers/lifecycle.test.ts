// Process lifecycle of the four built-in servers as the agent's supervisor sees
// it: they answer initialize, exit by themselves when stdin closes (even mid-call)
// or on SIGTERM, and refuse to start, with a clear and secret-free reason, on a
// missing key or bad config.
import { describe, expect, test } from '@jest/globals';
import { initialize, spawnServerProcess, type ServerProcess } from '../../support/mcp-child.js';

const expectInitialized = async (s: ServerProcess): Promise<void> => {
  const answer = await initialize(s);
  expect(answer).toMatchObject({ id: 1, result: { protocolVersion: '2025-06-18' } });
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
      const server = spawnServerProcess(name, {
        ...keyedEnv[name],
        MINIMCP_UPSTREAM_URL: 'http://127.0.0.1:9',
      });
      await expectInitialized(server);

      server.endInput();

      // Nobody signals the child: only its own exit resolves this.
      expect(await server.exited).toEqual({ code: 0, signal: null });
    },
  );

  test('a server busy with a tool call still exits when stdin closes', async () => {
    const server = spawnServerProcess('demo', {});
    await expectInitialized(server);
    server.send({
      id: 2,
      method: 'tools/call',
      params: { name: 'slow_count', arguments: { to: 10_000, delay_ms: 1_000 } },
    });

    server.endInput();

    expect(await server.exited).toEqual({ code: 0, signal: null });
  });

  test('SIGTERM stops a server cleanly', async () => {
    const server = spawnServerProcess('demo', {});
    await expectInitialized(server);

    server.process.kill('SIGTERM');

    expect(await server.exited).toEqual({ code: 0, signal: null });
    expect(server.stderr()).toContain('"reason":"SIGTERM"');
  });

  test('a keyed server without MINIMCP_API_KEY refuses to start and says why', async () => {
    const server = spawnServerProcess('github', {});
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toContain('MINIMCP_API_KEY is not set');
  });

  test('invalid MINIMCP_CONFIG is refused with the reason', async () => {
    const server = spawnServerProcess('figma', {
      MINIMCP_API_KEY: 'figd_lifecycle-test-token',
      MINIMCP_CONFIG: '{"timeout_ms": "soon"}',
    });
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toMatch(/MINIMCP_CONFIG is invalid.*timeout_ms/s);
  });

  test('a malformed Gmail key is refused without echoing the key', async () => {
    const key = '{"refresh_token": "1//secret-refresh-token-value", "client_id": ';
    const server = spawnServerProcess('gmail', { MINIMCP_API_KEY: key });
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toContain('not valid JSON');
    expect(server.stderr()).not.toContain('secret-refresh-token-value');
  });
});
