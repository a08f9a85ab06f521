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

  it('shows the oldest and newest health check of the ports in use', async () => {
    const node = await registerNode(api.db.owner, {
      name: 'edge-health',
      grpcAddress: '10.0.0.6:50051',
      publicHost: 'edge-health.example.test',
      portRangeStart: 4101,
      portRangeEnd: 4104,
      capacity: 4,
      agentVersion: '1.2.3',
    });
    const owner = await api.createUser();
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      const instance = await makeInstance(api.db.owner, { userId: owner.id, nodeId: node.id });
      ports.push(await asSystem(api.db.owner, (tx) => claimFreePort(tx, node.id, instance.id)));
    }
    await api.db.owner.query(sql.unsafe`
      UPDATE port_allocations SET last_health_check = CASE port
        WHEN ${ports[0]!} THEN timestamptz '2026-01-01T00:00:00Z'
        WHEN ${ports[1]!} THEN timestamptz '2026-01-01T00:00:05Z' END
      WHERE node_id = ${node.id} AND port IN (${ports[0]!}, ${ports[1]!})
    `);
    // A free port's old check does not count.
    await api.db.owner.query(sql.unsafe`
      UPDATE port_allocations SET last_health_check = timestamptz '2020-01-01T00:00:00Z'
      WHERE node_id = ${node.id} AND is_available
    `);

    const response = await api.request('GET', '/v1/nodes', { token: api.adminToken });
    const view = response
      .json<{ nodes: (NodeView & { ports: Record<string, unknown> })[] }>()
      .nodes.find((n) => n.name === 'edge-health');
    expect(view?.ports).toEqual({
      range_start: 4101,
      range_end: 4104,
      free: 1,
      used: 3,
      oldest_health_check: '2026-01-01T00:00:00.000Z',
      newest_health_check: '2026-01-01T00:00:05.000Z',
      never_checked: 1,
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
