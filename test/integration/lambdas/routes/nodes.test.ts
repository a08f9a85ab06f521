// GET /v1/nodes (admin): nodes with heartbeat age and port usage.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { registerNode } from '../../../../core/db/nodes.js';
import { claimFreePort } from '../../../../core/db/ports.js';
import { asSystem } from '../../../../lambdas/control/db/user-context.js';
import { makeInstance } from '../../../support/fixtures.js';
import { expectProblem, startTestApi, type TestApi } from '../../../support/api.js';

let api: TestApi;

beforeAll(async () => {
  api = await startTestApi();
});
afterAll(async () => {
  await api?.close();
});

type NodeView = {
  name: string;
  status: string;
  heartbeat_age_seconds: number | null;
  last_heartbeat: string | null;
  ports: { range_start: number; range_end: number; free: number; used: number };
};

describe('GET /v1/nodes', () => {
  it('lists nodes with heartbeat age and port usage', async () => {
    const node = await registerNode(api.db.owner, {
      name: 'edge-1',
      grpcAddress: '10.0.0.5:50051',
      publicHost: 'edge-1.example.test',
      portRangeStart: 4001,
      portRangeEnd: 4010,
      capacity: 10,
      agentVersion: '1.2.3',
    });
    await api.db.owner.query(
      sql.unsafe`UPDATE nodes SET last_heartbeat = now() - interval '90 seconds' WHERE id = ${node.id}`,
    );
    const owner = await api.createUser();
    const instance = await makeInstance(api.db.owner, { userId: owner.id, nodeId: node.id });
    await asSystem(api.db.owner, (tx) => claimFreePort(tx, node.id, instance.id));

    const response = await api.request('GET', '/v1/nodes', { token: api.adminToken });
    expect(response.status).toBe(200);
    const { nodes } = response.json<{ nodes: NodeView[] }>();
    expect(nodes.map((n) => n.name)).toEqual(['edge-1', 'local']);
    const edge = nodes[0]!;
    expect(edge).toMatchObject({
      status: 'active',
      ports: { range_start: 4001, range_end: 4010, free: 9, used: 1 },
    });
    expect(edge.heartbeat_age_seconds).toBeGreaterThanOrEqual(89);
    expect(edge.heartbeat_age_seconds).toBeLessThan(3600);
    expect(nodes[1]).toMatchObject({
      status: 'down',
      last_heartbeat: null,
      heartbeat_age_seconds: null,
      ports: { range_start: 3001, range_end: 3100, free: 100, used: 0 },
    });
  });

  it('is for admins only', async () => {
    const user = await api.createUserWithToken();
    expectProblem(await api.request('GET', '/v1/nodes', { token: user.token }), 403, 'forbidden');
    expectProblem(await api.request('GET', '/v1/nodes'), 401, 'unauthenticated');
    const admin = await api.createUserWithToken({ role: 'admin' });
    expect((await api.request('GET', '/v1/nodes', { token: admin.token })).status).toBe(200);
  });
});
