// A built-in server started warm (MINIMCP_BINDING_FD), as the agent's pool
// starts it: it waits with its code loaded, takes its instance's key, config
// and upstream from the binding pipe (never from its environment), and serves
// them; a bad binding stops it with a reason that does not quote the key, and
// a pipe closed unused lets it exit quietly.
// @see docs/decisions/0006-warm-pool.md
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startFakeUpstream, type FakeUpstream } from '../../support/fake-upstream.js';
import { initialize, spawnServerProcess, type ServerProcess } from '../../support/mcp-child.js';

const TOKEN = 'ghp_WarmStartToken_0123456789abcdefghij';

/** Started as the warm pool starts it: no key or upstream in its environment, a binding pipe open. */
const startWarm = (name: string): ServerProcess =>
  spawnServerProcess(name, {}, { bindingPipe: true });

describe('a warm-started built-in server', () => {
  let upstream: FakeUpstream;
  let workDir: string;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ headers: { authorization: `Bearer ${TOKEN}` } });
    workDir = mkdtempSync(path.join(os.tmpdir(), 'minimcp-warm-start-'));
  });
  afterAll(async () => {
    await upstream?.close();
    rmSync(workDir, { recursive: true, force: true });
  });

  test('serves the key, config and upstream of its binding, none of them in its environment', async () => {
    const warm = startWarm('github');
    try {
      warm.bind(
        JSON.stringify({
          env: {
            MINIMCP_API_KEY: TOKEN,
            MINIMCP_UPSTREAM_URL: upstream.url,
            MINIMCP_CONFIG: JSON.stringify({ api_version: 'v3', max_retries: 0 }),
          },
          cwd: workDir,
        }),
      );
      const init = await initialize(warm);
      expect(init).toMatchObject({
        result: { serverInfo: { name: expect.stringMatching(/github/) } },
      });

      upstream.expect(
        { method: 'GET', path: '/user' },
        { status: 401, json: { message: `Bad credentials ${TOKEN}` } },
      );
      const call = await warm.request(2, 'tools/call', {
        name: 'get_authenticated_user',
        arguments: {},
      });
      upstream.verify();
      expect(JSON.stringify(call)).toContain('isError');
      expect(JSON.stringify(call)).not.toContain(TOKEN);

      const pid = warm.process.pid!;
      const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
      expect(environ).not.toContain(TOKEN);
      expect(environ).not.toContain(upstream.url);
      expect(readlinkSync(`/proc/${pid}/cwd`)).toBe(workDir);
      expect(warm.stderr()).not.toContain(TOKEN);
    } finally {
      warm.endInput();
      await warm.exited;
    }
  });

  test('stops with a reason that does not quote a binding it cannot read', async () => {
    const warm = startWarm('github');
    warm.bind(`{"env": {"MINIMCP_API_KEY": "${TOKEN}"`);
    const { code } = await warm.exited;
    expect(code).toBe(1);
    expect(warm.stderr()).toContain('the binding is not valid JSON');
    expect(warm.stderr()).not.toContain(TOKEN);
  });

  test('exits quietly when its pipe closes unused', async () => {
    const warm = startWarm('demo');
    warm.bind('');
    const { code } = await warm.exited;
    expect(code).toBe(0);
    expect(warm.stderr()).toBe('');
  });
});
