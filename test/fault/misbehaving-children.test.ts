// Misbehaving MCP servers — a crash loop, a hang before initialize, a stdout
// and stderr flood, a memory hog, one that ignores SIGTERM — each end in a
// clear state, and neither the agent nor a neighbour instance stops serving.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { sql } from 'slonik';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { makeUser } from '../support/fixtures.js';
import { startAgentHarness, type AgentHarness } from '../support/agent-harness.js';
import { createInstanceRow, type TestInstance } from '../support/instances.js';
import { processGone, waitFor } from '../support/wait.js';
import { connectMcpClient } from '../support/mcp-client.js';
import { sampleValue, scrape } from '../support/prometheus.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/children/', import.meta.url));

const InstanceState = z.object({
  status: z.string(),
  error_message: z.string().nullable(),
  process_id: z.number().nullable(),
});

describe('misbehaving children', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let userId: string;
  let neighbour: TestInstance;
  let neighbourClient: Client;

  const registerType = async (
    name: string,
    fixture: string,
    limits: Record<string, string> = {},
  ) => {
    await db.owner.query(sql.unsafe`
      INSERT INTO mcp_types (name, display_name, command, args, requires_key, resource_limits)
      VALUES (${name}, ${name}, ${process.execPath}, ${sql.jsonb([path.join(FIXTURES, fixture)])}, false,
              ${sql.jsonb({ cpu: '4', memory: '512m', ...limits })})`);
  };

  const stateOf = (id: string) =>
    db.owner.one(
      sql.type(
        InstanceState,
      )`SELECT status, error_message, process_id FROM mcp_instances WHERE id = ${id}`,
    );

  const neighbourServes = async () => {
    const result = await neighbourClient.callTool({
      name: 'echo',
      arguments: { text: 'still here' },
    });
    expect(JSON.stringify(result.content)).toContain('still here');
    const health = await harness.client.health();
    expect(health.nodeStatus).toBe('active');
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    await registerType('crasher', 'crash.mjs');
    await registerType('hanger', 'hang.mjs');
    await registerType('flooder', 'flood.mjs');
    await registerType('hog', 'memory-hog.mjs', { memory: '96m' });
    await registerType('stubborn', 'ignore-sigterm.mjs');
    harness = await startAgentHarness({
      databaseUrl: db.agentUrl,
      env: {
        // Long enough for a healthy child on a loaded CI machine (several test
        // files start children at once), short enough for the hang test.
        MINIMCP_HANDSHAKE_TIMEOUT_MS: '6000',
        MINIMCP_MAX_RESTARTS: '2',
        MINIMCP_STOP_GRACE_MS: '500',
      },
    });
    neighbour = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: neighbour.id });
    expect(started.instance).toMatchObject({ status: 'running' });
    neighbourClient = await connectMcpClient(neighbour.url, neighbour.token, 'neighbour');
  });

  afterAll(async () => {
    await neighbourClient?.close().catch(() => undefined);
    await harness?.stop();
    await db.drop();
  });

  it('puts a crash-looping server in error after its restarts, with the exit in error_message', async () => {
    const instance = await createInstanceRow(db.owner, { userId, type: 'crasher' });
    await harness.client.startInstance({ instanceId: instance.id }).catch(() => undefined);
    const state = await waitFor('error state', async () => {
      const s = await stateOf(instance.id);
      return s.status === 'error' ? s : undefined;
    });
    expect(state.error_message).toMatch(/exit/i);
    expect(state.error_message).not.toContain(harness.masterKeyBase64);
    // MINIMCP_MAX_RESTARTS=2: the first start and two restarts, on the type's label.
    const metrics = await scrape(`http://${harness.agent.metricsAddress}/metrics`);
    const crasher = { type: 'crasher' };
    expect(sampleValue(metrics, 'minimcp_children_restarted_total', crasher)).toBe(2);
    expect(sampleValue(metrics, 'minimcp_children_started_total', crasher)).toBe(3);
    await neighbourServes();
  });

  it('gives up on a server that never answers initialize', async () => {
    const instance = await createInstanceRow(db.owner, { userId, type: 'hanger' });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    expect(answer.instance.status).toBe('error');
    expect(answer.instance.error?.code).toBe('READY_TIMEOUT');
    expect((await stateOf(instance.id)).error_message).toMatch(/initialize/);
    await neighbourServes();
  });

  it('keeps serving while a server floods stdout and stderr, and bounds what it keeps', async () => {
    const instance = await createInstanceRow(db.owner, { userId, type: 'flooder' });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    expect(answer.instance.status).toBe('running');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await neighbourServes();
    const rssMb = process.memoryUsage().rss / 1024 / 1024;
    expect(rssMb).toBeLessThan(2048); // bounded buffers: the flood did not pile up in the agent
    await harness.client.stopInstance({ instanceId: instance.id });
  });

  it('kills a memory hog with a clear error_message', async () => {
    const instance = await createInstanceRow(db.owner, { userId, type: 'hog' });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    const pid = answer.instance.pid;
    const state = await waitFor('killed hog', async () => {
      const s = await stateOf(instance.id);
      return s.status === 'error' ? s : undefined;
    });
    expect(state.error_message).toMatch(/memory \d+ MB is over the limit of 96 MB/);
    const metrics = await scrape(`http://${harness.agent.metricsAddress}/metrics`);
    expect(sampleValue(metrics, 'minimcp_children_killed_total', { type: 'hog' })).toBe(1);
    expect(
      sampleValue(metrics, 'minimcp_children_killed_total', { type: 'hog', limit: 'memory' }),
    ).toBe(1);
    await waitFor('hog gone', () => processGone(pid));
    await neighbourServes();
  });

  it('kills a server that ignores SIGTERM after the grace period', async () => {
    const instance = await createInstanceRow(db.owner, { userId, type: 'stubborn' });
    const answer = await harness.client.startInstance({ instanceId: instance.id });
    expect(answer.instance.status).toBe('running');
    await db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET deleted_at = now() WHERE id = ${instance.id}`,
    );
    await harness.client.stopInstance({ instanceId: instance.id });
    await waitFor('stubborn gone', () => processGone(answer.instance.pid));
    await neighbourServes();
  });
});
