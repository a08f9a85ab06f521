// The agent's warm pool with real children, a real API and a real agent: an
// instance of a built-in type starts on a pre-spawned child that gets its key
// over a pipe (never in its environment nor in any log), the pool refills,
// replaces a child killed while idle, falls back to a cold spawn, never pools a
// type's own command, and with MINIMCP_WARM_POOL=0 the agent spawns as before.
// @see docs/decisions/0006-warm-pool.md
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'slonik';
import { z } from 'zod';
import { readChildRecords } from '../../../../agent/child/child-registry.js';
import { prepareChildStdio } from '../../../../agent/child/child-stdio.js';
import { createSupervisor, type WarmChild } from '../../../../agent/child/supervisor.js';
import { createWarmPool } from '../../../../agent/child/warm-pool.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { DIST_ROOT } from '../../../support/agent-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../../../support/fake-upstream.js';
import { startFaultStack, type FaultStack, type FaultUser } from '../../../support/fault-stack.js';
import { processGone, waitFor } from '../../../support/wait.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/children/', import.meta.url));
/** A GitHub-shaped key unique to this run: its presence anywhere is a leak. */
const KEY = `ghp_warm${randomBytes(24).toString('hex')}`;

const Created = z.object({ id: z.string(), access_url: z.string(), access_token: z.string() });
type Created = z.infer<typeof Created>;

const environOf = (pid: number): string => readFileSync(`/proc/${pid}/environ`, 'latin1');

describe('warm pool', () => {
  let db: TestDatabase;
  let upstream: FakeUpstream;
  let stack: FaultStack;
  let owner: FaultUser;

  const create = async (type: string): Promise<Created> => {
    const response = await stack.request('POST', '/v1/instances', {
      token: owner.token,
      json: { type },
    });
    if (response.status !== 201) throw new Error(`create ${type}: ${response.text}`);
    return Created.parse(response.body);
  };
  const pidOf = (id: string): number => {
    const pid = stack.agent.reconciler.get(id)?.pid;
    if (pid === undefined) throw new Error(`instance ${id} has no child`);
    return pid;
  };
  const logsOf = (id: string) =>
    waitFor('the instance log lines', async () => {
      const lines = await db.owner.anyFirst(sql.type(z.object({ message: z.string() }))`
        SELECT message FROM mcp_logs WHERE mcp_instance_id = ${id} ORDER BY timestamp`);
      return lines.some((line) => line.startsWith('ready in')) ? lines : undefined;
    });
  const idle = (type: string): number[] => stack.agent.warmPool?.idlePids(type) ?? [];

  beforeAll(async () => {
    db = await createTestDatabase();
    // A type that runs its own command: named in the pool setting, it must not be pooled.
    await db.owner.query(sql.unsafe`
      INSERT INTO mcp_types (name, display_name, command, args, config_template)
      VALUES ('warm-command', 'Warm command', ${process.execPath},
              ${sql.jsonb([`${FIXTURES}mcp-fixture.mjs`])}, '{}')`);
    upstream = await startFakeUpstream({ headers: { authorization: `Bearer ${KEY}` } });
    stack = await startFaultStack({
      appUrl: db.appUrl,
      agentUrl: db.agentUrl,
      agentEnv: {
        MINIMCP_WARM_POOL: 'demo:1,github:1,warm-command:1',
        MINIMCP_UPSTREAM_OVERRIDES: JSON.stringify({ github: upstream.url }),
      },
    });
    owner = await stack.createUser();
    const stored = await stack.request('PUT', '/v1/keys/github', {
      token: owner.token,
      json: { key: KEY },
    });
    expect(stored.status).toBe(200);
  });
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
    await db?.drop();
  });

  it('keeps idle children of the pooled built-in types, recorded for orphan cleanup', async () => {
    const [demo] = await waitFor(
      'an idle demo child',
      () => idle('demo').length === 1 && idle('demo'),
    );
    const [github] = await waitFor(
      'an idle github child',
      () => idle('github').length === 1 && idle('github'),
    );
    const children = await readChildRecords(
      path.join(stack.agentDataDir, `agent-${stack.nodeName}`),
    );
    expect(children).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ pid: demo, label: 'warm-pool:demo' }),
        expect.objectContaining({ pid: github, label: 'warm-pool:github' }),
      ]),
    );
    // Nothing about any instance is in an idle child's environment.
    expect(environOf(github!)).toContain('MINIMCP_BINDING_FD=3');
    expect(environOf(github!)).not.toContain('MINIMCP_API_KEY');
  });

  it('does not pool a type that runs its own command', () => {
    expect(idle('warm-command')).toEqual([]);
    expect(stack.agentLogs.join('\n')).toMatch(/"type":"warm-command".*not pooled/);
  });

  it('starts a github instance on the idle child, serving tools through the gateway with its key', async () => {
    const [warmPid] = await waitFor(
      'an idle github child',
      () => idle('github').length === 1 && idle('github'),
    );
    const instance = await create('github');
    expect(pidOf(instance.id)).toBe(warmPid);

    upstream.expect(
      { method: 'GET', path: '/user' },
      {
        json: {
          login: 'octocat',
          id: 1,
          html_url: 'https://github.com/octocat',
          type: 'User',
          site_admin: false,
          name: 'monalisa octocat',
          email: null,
          public_repos: 2,
          created_at: '2008-01-14T04:33:35Z',
        },
        headers: { 'x-oauth-scopes': 'repo' },
      },
    );
    const client = await stack.connectMcp(instance.access_url, instance.access_token);
    const result = await client.callTool({ name: 'get_authenticated_user', arguments: {} });
    await client.close();
    upstream.verify();
    expect(JSON.stringify(result.content)).not.toMatch(/error/i);
    expect(result.isError).toBeFalsy();
    expect(JSON.stringify(result.structuredContent)).toContain('octocat');

    // The key came over the pipe: not in the environment, and the child moved to its instance folder.
    expect(environOf(warmPid!)).not.toContain(KEY);
    expect(readlinkSync(`/proc/${warmPid}/cwd`)).toContain(instance.id);
    const lines = await logsOf(instance.id);
    expect(lines).toContainEqual(`spawned pid ${warmPid} (attempt 0, from the warm pool)`);
    expect(lines.join('\n')).not.toContain(KEY);
    expect(stack.agentLogs.join('\n')).not.toContain(KEY);
    expect(stack.apiLogs.join('\n')).not.toContain(KEY);
  });

  it('refills after a take', async () => {
    const taken = new Set(
      stack.agent.reconciler
        .list()
        .map((runtime) => runtime.pid)
        .filter((pid) => pid !== undefined),
    );
    const [fresh] = await waitFor(
      'a new idle github child',
      () => idle('github').length === 1 && idle('github'),
    );
    expect(taken.has(fresh!)).toBe(false);
    expect(processGone(fresh!)).toBe(false);
    expect(stack.agent.warmPool?.stats()).toMatchObject({ hits: 1 });
  });

  it('replaces an idle child killed under it', async () => {
    const [victim] = await waitFor(
      'an idle demo child',
      () => idle('demo').length === 1 && idle('demo'),
    );
    process.kill(victim!, 'SIGKILL');
    await waitFor('the killed child gone', () => processGone(victim!));
    const [replacement] = await waitFor(
      'a replacement demo child',
      () => idle('demo').length === 1 && idle('demo')[0] !== victim && idle('demo'),
    );
    expect(processGone(replacement!)).toBe(false);
    expect(stack.agent.warmPool?.stats().died).toBeGreaterThanOrEqual(1);

    const instance = await create('demo');
    expect(pidOf(instance.id)).toBe(replacement);
    const client = await stack.connectMcp(instance.access_url, instance.access_token);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('echo');
    await client.close();
  });

  it('spawns cold when the idle child was killed just before a create', async () => {
    const [victim] = await waitFor(
      'an idle demo child',
      () => idle('demo').length === 1 && idle('demo'),
    );
    process.kill(victim!, 'SIGKILL');
    const instance = await create('demo');
    const pid = pidOf(instance.id);
    expect(pid).not.toBe(victim);
    const lines = await logsOf(instance.id);
    // Whether the pool saw the death first (a miss) or handed the dying child over, the child runs cold.
    expect(lines).toContainEqual(`spawned pid ${pid} (attempt 0)`);
    const client = await stack.connectMcp(instance.access_url, instance.access_token);
    expect((await client.listTools()).tools.map((tool) => tool.name)).toContain('echo');
    await client.close();
  });

  it('kills its idle children when the agent stops', async () => {
    const pids = await waitFor('idle children', () => {
      const all = [...idle('demo'), ...idle('github')];
      return all.length === 2 && all;
    });
    await stack.stopAgent();
    for (const pid of pids) await waitFor(`idle child ${pid} gone`, () => processGone(pid));
  });
});

describe('warm pool disabled (MINIMCP_WARM_POOL=0)', () => {
  let db: TestDatabase;
  let stack: FaultStack;

  beforeAll(async () => {
    db = await createTestDatabase();
    stack = await startFaultStack({
      appUrl: db.appUrl,
      agentUrl: db.agentUrl,
      agentEnv: { MINIMCP_WARM_POOL: '0' },
    });
  });
  afterAll(async () => {
    await stack?.close();
    await db?.drop();
  });

  it('spawns each instance fresh, as before', async () => {
    expect(stack.agent.warmPool).toBeUndefined();
    const owner = await stack.createUser();
    const response = await stack.request('POST', '/v1/instances', {
      token: owner.token,
      json: { type: 'demo' },
    });
    expect(response.status).toBe(201);
    const instance = Created.parse(response.body);
    const pid = stack.agent.reconciler.get(instance.id)?.pid;
    const lines = await waitFor('the instance log lines', async () => {
      const found = await db.owner.anyFirst(sql.type(z.object({ message: z.string() }))`
        SELECT message FROM mcp_logs WHERE mcp_instance_id = ${instance.id}`);
      return found.some((line) => line.startsWith('ready in')) ? found : undefined;
    });
    expect(lines).toContainEqual(`spawned pid ${pid} (attempt 0)`);
    // Spawned with its instance's environment, the old way.
    expect(environOf(pid!)).toContain(`MINIMCP_INSTANCE_ID=${instance.id}`);
    const children = await readChildRecords(
      path.join(stack.agentDataDir, `agent-${stack.nodeName}`),
    );
    expect(children.map((child) => child.label)).toEqual([instance.id]);
  });
});

describe('supervisor with a warm child', () => {
  it('falls back to a cold spawn when the taken child dies before its handshake', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'minimcp-warm-'));
    // A "warm" child that is already on its way out when it is taken.
    const stdio = await prepareChildStdio(path.join(cwd, 'stdio'));
    const dying = spawn(process.execPath, ['-e', 'setTimeout(() => process.exit(7), 50)'], {
      stdio: [...stdio.childFds, 'pipe'],
      detached: true,
    });
    stdio.releaseChildFds();
    let bound: unknown;
    const warm: WarmChild = { child: dying, stdio, bind: (binding) => (bound = binding) };
    const events: string[] = [];
    const supervisor = createSupervisor({
      command: process.execPath,
      args: [path.join(DIST_ROOT, 'mcp-servers/demo-mcp-server.js')],
      env: { MINIMCP_CONFIG: '{}' },
      cwd,
      takeWarmChild: () => warm,
      onEvent: (event) => {
        if (event.type === 'spawned') events.push(`${event.pid}:${event.warm ? 'warm' : 'cold'}`);
      },
    });
    try {
      const result = await supervisor.start();
      expect(result.serverInfo.name).toMatch(/demo/);
      expect(bound).toEqual({ env: { MINIMCP_CONFIG: '{}' }, cwd });
      expect(events).toEqual([`${dying.pid}:warm`, `${supervisor.pid}:cold`]);
      expect(supervisor.pid).not.toBe(dying.pid);
    } finally {
      await supervisor.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe('warm pool filling', () => {
  it('spawns nothing until fillWhen settles, then fills every slot', async () => {
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'minimcp-warm-fill-'));
    let firstPassDone!: () => void;
    const firstPass = new Promise<void>((resolve) => (firstPassDone = resolve));
    const pool = createWarmPool({
      entries: [
        {
          type: 'demo',
          command: process.execPath,
          args: [path.join(DIST_ROOT, 'mcp-servers/demo-mcp-server.js')],
          size: 2,
        },
      ],
      cwd,
      fillWhen: firstPass,
    });
    try {
      const command = [path.join(DIST_ROOT, 'mcp-servers/demo-mcp-server.js')];
      // Before: no idle child, and a take (a miss) does not start the filling either.
      expect(pool.take('demo', process.execPath, command)).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(pool.idlePids('demo')).toEqual([]);
      expect(pool.stats()).toMatchObject({ idle: 0, misses: 1 });
      firstPassDone();
      const pids = await waitFor('pool filled', () =>
        pool.idlePids('demo').length === 2 ? pool.idlePids('demo') : undefined,
      );
      expect(pids.every((pid) => !processGone(pid))).toBe(true);
    } finally {
      await pool.close();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
