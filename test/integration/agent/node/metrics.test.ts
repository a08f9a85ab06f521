// The agent's Prometheus metrics: its own listener serves them in the text
// format, and after a create and some calls through a real MCP client the
// counters have moved by exactly what happened, on bounded label sets.
import { createServer } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { createDatabasePool } from '../../../../core/db/pool.js';
import { createAgentMetrics, startMetricsListener } from '../../../../agent/node/metrics.js';
import { startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow } from '../../../support/instances.js';
import { connectMcpClient } from '../../../support/mcp-client.js';
import { postMcp } from '../../../support/mcp-http.js';
import { histogramCount, moved, sampleValue, scrape } from '../../../support/prometheus.js';
import { waitFor } from '../../../support/wait.js';

describe('agent metrics', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let userId: string;
  let metricsUrl: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    userId = (await makeUser(db.owner)).id;
    harness = await startAgentHarness({ databaseUrl: db.agentUrl });
    metricsUrl = `http://${harness.agent.metricsAddress}/metrics`;
  });
  afterAll(async () => {
    await harness?.stop().catch(() => undefined);
    await db?.drop();
  });

  it('serves GET /metrics on its own listener, and nothing else there', async () => {
    expect(harness.agent.metricsAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    const families = await scrape(metricsUrl);
    expect(families.map((family) => family.name)).toEqual(
      expect.arrayContaining([
        'minimcp_mcp_requests_total',
        'minimcp_mcp_request_duration_seconds',
        'minimcp_instances',
        'minimcp_log_lines_dropped_total',
        'minimcp_reconcile_duration_seconds',
      ]),
    );
    expect((await fetch(`http://${harness.agent.metricsAddress}/`)).status).toBe(404);
    expect((await fetch(metricsUrl, { method: 'POST' })).status).toBe(405);
  });

  it('counts a create and its MCP calls by type, method and outcome, never by instance', async () => {
    const registry = harness.agent.metricsRegistry;
    const before = await scrape(metricsUrl);
    const callsBefore = await histogramCount(registry, 'minimcp_mcp_request_duration_seconds', {
      type: 'demo',
      method: 'tools/call',
    });
    const instance = await createInstanceRow(db.owner, { userId });
    const started = await harness.client.startInstance({ instanceId: instance.id });
    expect(started.instance).toMatchObject({ status: 'running' });
    const client = await connectMcpClient(instance.url, instance.token, 'metrics-test');
    for (let i = 0; i < 3; i++)
      await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
    await client.close();
    const refused = await postMcp(
      instance.url,
      { jsonrpc: '2.0', id: 1, method: 'ping' },
      { Authorization: 'Bearer mcp_wrong' },
    );
    expect(refused.status).toBe(401);

    const after = await scrape(metricsUrl);
    const calls = { type: 'demo', method: 'tools/call' };
    expect(moved(before, after, 'minimcp_mcp_requests_total', { ...calls, outcome: 'ok' })).toBe(3);
    expect(moved(before, after, 'minimcp_mcp_requests_total', calls)).toBe(3);
    expect(
      (await histogramCount(registry, 'minimcp_mcp_request_duration_seconds', calls)) - callsBefore,
    ).toBe(3);
    expect(
      moved(before, after, 'minimcp_mcp_requests_total', { type: 'demo', method: 'initialize' }),
    ).toBe(1);
    expect(
      moved(before, after, 'minimcp_mcp_requests_total', { type: 'demo', outcome: 'client_error' }),
    ).toBe(1);
    expect(moved(before, after, 'minimcp_children_started_total', { type: 'demo' })).toBe(1);
    expect(moved(before, after, 'minimcp_warm_pool_takes_total', { type: 'demo' })).toBe(1);
    expect(
      moved(before, after, 'minimcp_grpc_requests_total', { method: 'StartInstance', code: 'OK' }),
    ).toBe(1);
    expect(sampleValue(after, 'minimcp_instances', { state: 'running' })).toBe(1);
    expect(moved(before, after, 'minimcp_mcp_request_latency_seconds')).toBeGreaterThanOrEqual(5);

    const text = await (await fetch(metricsUrl)).text();
    expect(text).not.toContain(instance.id);
    expect(text).not.toContain(userId);
  });

  it('counts log lines shipped and reconcile passes as the agent works', async () => {
    const registry = harness.agent.metricsRegistry;
    const passes = () =>
      histogramCount(registry, 'minimcp_reconcile_duration_seconds', { outcome: 'ok' });
    const before = await scrape(metricsUrl);
    const passesBefore = await passes();
    await createInstanceRow(db.owner, { userId });
    await waitFor('log lines shipped and a reconcile pass', async () => {
      const now = await scrape(metricsUrl);
      return (
        moved(before, now, 'minimcp_log_lines_shipped_total') > 0 && (await passes()) > passesBefore
      );
    });
    const after = await scrape(metricsUrl);
    expect(sampleValue(after, 'minimcp_log_lines_dropped_total')).toBe(0);
  });
});

describe('agent metrics without an agent', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('counts the database refusing a statement, not the caller’s own error in a transaction', async () => {
    const metrics = createAgentMetrics();
    const pool = await createDatabasePool(db.ownerUrl, { onError: metrics.databaseError });
    try {
      await expect(pool.query(sql.unsafe`SELECT * FROM no_such_table`)).rejects.toThrow();
      await expect(
        pool.transaction(async () => {
          throw new Error('the caller’s own');
        }),
      ).rejects.toThrow('the caller’s own');
      await expect(pool.oneFirst(sql.unsafe`SELECT 1`)).resolves.toBe(1);
    } finally {
      await pool.end();
    }
    const [family] = (await metrics.registry.getMetricsAsJSON()).filter(
      (metric) => metric.name === 'minimcp_database_errors_total',
    );
    expect(family?.values).toEqual([{ value: 1, labels: { kind: 'query' } }]);
  });

  it('keeps the registries of two agents in one process apart', async () => {
    const one = createAgentMetrics();
    const two = createAgentMetrics();
    one.logShipper.dropped(4);
    const dropped = async (metrics: typeof one) =>
      (await metrics.registry.getSingleMetric('minimcp_log_lines_dropped_total')?.get())?.values[0]
        ?.value ?? 0;
    expect(await dropped(one)).toBe(4);
    expect(await dropped(two)).toBe(0);
  });

  it('refuses to start on a taken address, naming the setting', async () => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as { port: number };
    try {
      await expect(
        startMetricsListener(createAgentMetrics().registry, { host: '127.0.0.1', port }, () => {}),
      ).rejects.toThrow(/MINIMCP_METRICS_LISTEN 127\.0\.0\.1:\d+: cannot listen \(EADDRINUSE\)/);
    } finally {
      taken.close();
    }
  });
});
