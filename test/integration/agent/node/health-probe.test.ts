// The agent's health probe of running instances: a live child and an
// answering port stamp port_allocations.last_health_check, in one statement
// per pass; GET /v1/nodes shows the oldest and newest check of each node.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { probeAndRecord, probeHost } from '../../../../agent/node/health-probe.js';
import { claimFreePort } from '../../../../core/db/ports.js';
import { asSystem } from '../../../../lambdas/control/db/user-context.js';
import { randomPortRange, startAgentHarness } from '../../../support/agent-harness.js';
import { startTestApi } from '../../../support/api.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeInstance, makeNode, makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { waitFor } from '../../../support/wait.js';

let db: TestDatabase;
let userId: string;

beforeAll(async () => {
  db = await createTestDatabase();
  userId = (await makeUser(db.owner)).id;
});
afterAll(() => db?.drop());

const Checked = z.object({ port: z.number(), last_health_check: z.date().nullable() });

async function checks(nodeId: string): Promise<Map<number, Date | null>> {
  const rows = await db.owner.any(sql.type(Checked)`
    SELECT port, last_health_check FROM port_allocations WHERE node_id = ${nodeId}
  `);
  return new Map(rows.map((r) => [r.port, r.last_health_check]));
}

function listen(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('probeAndRecord', () => {
  it('stamps only instances whose child is alive and whose port answers', async () => {
    const range = randomPortRange(3);
    const node = await makeNode(db.owner, { portRangeStart: range.start, portRangeEnd: range.end });
    const instances = [];
    for (let i = 0; i < 3; i++) {
      const instance = await makeInstance(db.owner, { userId, nodeId: node.id });
      const port = await asSystem(db.owner, (tx) => claimFreePort(tx, node.id, instance.id));
      instances.push({ instanceId: instance.id, port });
    }
    const [healthy, childGone, portClosed] = instances as [
      (typeof instances)[0],
      (typeof instances)[0],
      (typeof instances)[0],
    ];
    const servers = [await listen(healthy.port), await listen(childGone.port)];
    try {
      const unhealthy = await probeAndRecord({
        pool: db.owner,
        nodeId: node.id,
        host: probeHost('0.0.0.0'),
        targets: [
          { ...healthy, pid: process.pid },
          { ...childGone, pid: await deadPid() },
          { ...portClosed, pid: process.pid },
          // Between restarts a runtime has no pid: not healthy either.
          { instanceId: healthy.instanceId, port: healthy.port + 1000, pid: undefined },
        ],
      });
      expect(unhealthy.map((t) => t.instanceId)).toEqual([
        childGone.instanceId,
        portClosed.instanceId,
        healthy.instanceId,
      ]);
      const stamped = await checks(node.id);
      expect(stamped.get(healthy.port)).toBeInstanceOf(Date);
      expect(stamped.get(childGone.port)).toBeNull();
      expect(stamped.get(portClosed.port)).toBeNull();
    } finally {
      for (const server of servers) server.close();
      // Not a place for the agent test's instances.
      await db.owner.query(sql.unsafe`UPDATE nodes SET status = 'down' WHERE id = ${node.id}`);
    }
  });
});

describe('the agent', () => {
  it('probes its running instances on the usage tick, and GET /v1/nodes shows the checks', async () => {
    const harness = await startAgentHarness({
      databaseUrl: db.agentUrl,
      portCount: 4,
      env: { MINIMCP_WARM_POOL: '0' },
    });
    const api = await startTestApi({ db });
    try {
      const nodeId = harness.agent.node.id;
      const running = [
        await createInstanceRow(db.owner, { userId }),
        await createInstanceRow(db.owner, { userId }),
      ];
      for (const instance of running)
        await harness.client.startInstance({ instanceId: instance.id });

      const first = await waitFor('both running instances health-checked', async () => {
        const stamped = await checks(nodeId);
        const times = running.map((i) => stamped.get(i.port));
        return times.every((t) => t instanceof Date) ? (times as Date[]) : undefined;
      });
      // Free ports are never probed.
      const stamped = await checks(nodeId);
      const freePorts = [...stamped.keys()].filter((p) => !running.some((i) => i.port === p));
      expect(freePorts.map((p) => stamped.get(p))).toEqual(freePorts.map(() => null));
      // Each pass stamps again.
      await waitFor('a later pass', async () => {
        const again = await checks(nodeId);
        return running.every((i, n) => (again.get(i.port)?.getTime() ?? 0) > first[n]!.getTime());
      });

      const response = await api.request('GET', '/v1/nodes', { token: api.adminToken });
      expect(response.status).toBe(200);
      const view = response
        .json<{ nodes: { id: string; ports: Record<string, unknown> }[] }>()
        .nodes.find((n) => n.id === nodeId);
      expect(view?.ports).toMatchObject({ used: 2, free: 2, never_checked: 0 });
      const oldest = Date.parse(String(view?.ports.oldest_health_check));
      const newest = Date.parse(String(view?.ports.newest_health_check));
      expect(oldest).toBeLessThanOrEqual(newest);
      expect(Date.now() - oldest).toBeLessThan(60_000);
    } finally {
      await api.close();
      await harness.stop();
    }
  });
});
