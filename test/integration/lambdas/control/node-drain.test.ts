// Draining a node with two real agents: nothing new is placed on it, and
// with `move` its instances run on the other node with the same token.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { createAgentRegistry } from '../../../../lambdas/control/agent-registry.js';
import { createLogger } from '../../../../core/logger.js';
import { drainNode } from '../../../../lambdas/control/node-drain.js';
import { startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { portOpen, waitFor } from '../../../support/wait.js';
import { connectMcpClient } from '../../../support/mcp-client.js';

describe('node drain', () => {
  let db: TestDatabase;
  let a: AgentHarness;
  let b: AgentHarness | undefined;
  let userId: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    a = await startAgentHarness({ databaseUrl: db.agentUrl, nodeName: 'drain-a' });
  });
  afterAll(async () => {
    await b?.stop();
    await a?.stop();
    await db.drop();
  });

  it('moves running instances to another node, keeps their token, and places nothing new on the drained node', async () => {
    const instance = await createInstanceRow(db.owner, { userId });
    await a.client.startInstance({ instanceId: instance.id });
    b = await startAgentHarness({
      databaseUrl: db.agentUrl,
      nodeName: 'drain-b',
      masterKeyBase64: a.masterKeyBase64,
    });

    const registry = createAgentRegistry({
      tls: a.certificates.controlPlane,
      defaultDeadlineMs: 20_000,
    });
    // Each harness has its own test CA: node B is dialled with its harness's client.
    const agents = (node: { id: string; grpc_address: string }) =>
      node.grpc_address === b!.agent.grpcAddress ? b!.client : registry.forNode(node);
    const result = await drainNode({
      pool: db.app,
      agents,
      nodeId: instance.nodeId,
      move: true,
      heartbeatFreshSeconds: 60,
      startWaitMs: 15_000,
      logger: createLogger({ level: 'silent' }),
    });
    registry.close();

    expect(result.node.status).toBe('draining');
    expect(result.notMoved).toEqual([]);
    expect(result.moved).toEqual([
      { instanceId: instance.id, toNode: 'drain-b', port: expect.any(Number) },
    ]);
    const row = await db.owner.one(sql.type(
      z.object({ node_id: z.string(), access_url: z.string(), status: z.string() }),
    )`
      SELECT node_id::text, access_url, status FROM mcp_instances WHERE id = ${instance.id}`);
    expect(row.node_id).toBe(b.agent.node.id);
    expect(row.status).toBe('running');

    const client = await connectMcpClient(row.access_url, instance.token, 'drain-test');
    expect(
      (await client.callTool({ name: 'echo', arguments: { text: 'moved' } })).structuredContent,
    ).toEqual({ text: 'moved' });
    await client.close();

    // The drained node's agent stops its copy at its next reconcile pass.
    await waitFor('old copy stopped', async () => !(await portOpen(instance.port)));
    const events = await db.owner.any(sql.type(z.object({ event_type: z.string() }))`
      SELECT event_type FROM mcp_events WHERE mcp_instance_id = ${instance.id} ORDER BY created_at`);
    expect(events.map((e) => e.event_type)).toEqual(['created', 'started', 'moved', 'started']);

    const next = await createInstanceRow(db.owner, { userId });
    expect(next.nodeId).toBe(b.agent.node.id);
  });
});
