// MINIMCP_CHILD_UIDS with a real agent (as root, as CI runs): instances of a
// built-in type start on warm and cold children that each run as a user of
// their own, serve MCP through the gateway, and give their user back when
// they stop. The server bundles are copied where any user can read them
// (the checkout may sit in a private home).
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync, statSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DIST_ROOT, startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { processGone, waitFor } from '../../../support/wait.js';
import { connectMcpClient } from '../../../support/mcp-client.js';

const asRoot = process.getuid?.() === 0 ? describe : describe.skip;

/** The real uid of a process, from /proc/<pid>/status. */
const uidOf = (pid: number): number =>
  Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

asRoot('children as users of their own, with a real agent', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let userId: string;
  const base = 500_000 + Math.floor(Math.random() * 10_000) * 10;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    const servers = await mkdtemp(path.join(os.tmpdir(), 'minimcp-public-servers-'));
    await chmod(servers, 0o755);
    await mkdir(path.join(servers, 'mcp-servers'), { mode: 0o755 });
    for (const name of await readdir(path.join(DIST_ROOT, 'mcp-servers'))) {
      if (!name.endsWith('-mcp-server.js')) continue;
      const target = path.join(servers, 'mcp-servers', name);
      await copyFile(path.join(DIST_ROOT, 'mcp-servers', name), target);
      await chmod(target, 0o644);
    }
    harness = await startAgentHarness({
      databaseUrl: db.agentUrl,
      serversRoot: servers,
      env: { MINIMCP_CHILD_UIDS: `${base}-${base + 9}`, MINIMCP_WARM_POOL: 'demo:1' },
    });
  });
  let stopped = false;
  afterAll(async () => {
    if (!stopped) await harness?.stop();
    await db?.drop();
  });

  it('runs each instance as its own user, warm or cold, and serves it', async () => {
    // The warm child waits as a user of the range already.
    const [warm] = await waitFor('an idle demo child', () => {
      const pids = harness.agent.warmPool?.idlePids('demo') ?? [];
      return pids.length === 1 && pids;
    });
    expect(uidOf(warm!)).toBeGreaterThanOrEqual(base);

    const instances = [
      await createInstanceRow(db.owner, { userId }),
      await createInstanceRow(db.owner, { userId }),
    ];
    const pids: number[] = [];
    for (const instance of instances) {
      const answer = await harness.client.startInstance({ instanceId: instance.id });
      expect(answer.instance.status).toBe('running');
      pids.push(harness.agent.reconciler.get(instance.id)!.pid!);
    }
    // The first took the warm child, the second (pool empty) spawned cold.
    expect(pids[0]).toBe(warm);
    const uids = pids.map(uidOf);
    for (const uid of uids) {
      expect(uid).toBeGreaterThanOrEqual(base);
      expect(uid).toBeLessThanOrEqual(base + 9);
    }
    expect(new Set(uids).size).toBe(2);
    // Each works in a folder of its own user.
    for (const [index, instance] of instances.entries()) {
      const cwd = path.join(
        harness.dataDir,
        `agent-${harness.agent.node.name}`,
        'instances',
        instance.id,
      );
      expect(statSync(cwd).uid).toBe(uids[index]);
    }

    for (const instance of instances) {
      const client = await connectMcpClient(instance.url, instance.token, 'child-users-test');
      expect((await client.listTools()).tools.length).toBeGreaterThan(0);
      await client.close();
    }

    stopped = true;
    await harness.stop();
    for (const pid of pids) expect(processGone(pid)).toBe(true);
  });
});
