// What the agent reports about itself: the node totals its heartbeat writes
// into nodes.stats (from the usage sampler and the log shipper) and each
// running instance's figures in mcp_instances.stats.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { startAgentHarness, type AgentHarness } from '../../../support/agent-harness.js';
import { createTestDatabase, type TestDatabase } from '../../../support/database.js';
import { makeUser } from '../../../support/fixtures.js';
import { createInstanceRow, type TestInstance } from '../../../support/instances.js';
import { waitFor } from '../../../support/wait.js';
import { connectMcpClient } from '../../../support/mcp-client.js';

const PORTS = 6;

const NodeStats = z.object({
  instances_running: z.number(),
  children_cpu_percent: z.number(),
  children_rss_bytes: z.number(),
  agent_rss_bytes: z.number(),
  requests_total: z.number(),
  ports_free: z.number().nullable(),
  log_shipper: z.object({
    queued: z.number(),
    shipped: z.number(),
    spooledLines: z.number(),
    spoolBytes: z.number(),
    dropped: z.number(),
    databaseReachable: z.boolean(),
  }),
});

const InstanceStats = z.object({
  sampled_at: z.string(),
  pid: z.number(),
  cpu_percent: z.number(),
  rss_bytes: z.number(),
  uptime_seconds: z.number(),
  restarts: z.number(),
  requests: z.number(),
  errors: z.number(),
  bytes_in: z.number(),
  bytes_out: z.number(),
  sessions: z.number(),
});

describe('agent telemetry', () => {
  let db: TestDatabase;
  let harness: AgentHarness;
  let instances: TestInstance[];
  const pids = new Map<string, number>();

  beforeAll(async () => {
    db = await createTestDatabase();
    harness = await startAgentHarness({ databaseUrl: db.agentUrl, portCount: PORTS });
    const userId = (await makeUser(db.owner)).id;
    instances = [
      await createInstanceRow(db.owner, { userId }),
      await createInstanceRow(db.owner, { userId }),
    ];
    for (const instance of instances) {
      const started = await harness.client.startInstance({ instanceId: instance.id });
      pids.set(instance.id, started.instance.pid!);
    }
    // Some traffic through the first instance's gateway.
    const client = await connectMcpClient(instances[0]!.url, instances[0]!.token, 'telemetry-test');
    await client.listTools();
    await client.close();
  });

  afterAll(async () => {
    await harness?.stop().catch(() => undefined);
    await db?.drop();
  });

  it('writes node totals into nodes.stats with each heartbeat', async () => {
    const since = new Date();
    // Waits for a heartbeat taken after the first batch landed: on a loaded
    // machine the first heartbeats can come before the shipper's first INSERT.
    const stats = await waitFor(
      'a heartbeat with both instances and shipped lines counted',
      async () => {
        const row = await db.owner.one(sql.type(
          z.object({ stats: z.unknown(), fresh: z.boolean() }),
        )`
        SELECT stats, last_heartbeat > ${sql.timestamp(since)} AS fresh
        FROM nodes WHERE id = ${harness.agent.node.id}`);
        const parsed = NodeStats.safeParse(row.stats);
        return row.fresh &&
          parsed.success &&
          parsed.data.instances_running === 2 &&
          parsed.data.requests_total > 0 &&
          parsed.data.ports_free === PORTS - 2 &&
          parsed.data.log_shipper.shipped > 0
          ? parsed.data
          : undefined;
      },
    );
    expect(stats.children_rss_bytes).toBeGreaterThan(0);
    expect(stats.agent_rss_bytes).toBeGreaterThan(0);
    expect(stats.children_cpu_percent).toBeGreaterThanOrEqual(0);
    expect(stats.ports_free).toBe(PORTS - 2);
    expect(stats.log_shipper).toMatchObject({
      dropped: 0,
      spooledLines: 0,
      databaseReachable: true,
    });
    // The instances' own lines (spawned, ready) went through the shipper (waited for above).
  });

  it('writes each running instance’s figures into mcp_instances.stats', async () => {
    const rows = await waitFor('both instances sampled, with the traffic counted', async () => {
      const found = await db.owner.any(sql.type(z.object({ id: z.string(), stats: z.unknown() }))`
        SELECT id, stats FROM mcp_instances WHERE id = ANY(${sql.array(
          instances.map((i) => i.id),
          'uuid',
        )})`);
      const parsed = new Map(found.map((row) => [row.id, InstanceStats.safeParse(row.stats)]));
      const first = parsed.get(instances[0]!.id);
      const second = parsed.get(instances[1]!.id);
      return first?.success && second?.success && first.data.requests > 0
        ? { first: first.data, second: second.data }
        : undefined;
    });
    expect(rows.first).toMatchObject({ pid: pids.get(instances[0]!.id), restarts: 0, errors: 0 });
    expect(rows.second).toMatchObject({
      pid: pids.get(instances[1]!.id),
      restarts: 0,
      requests: 0,
    });
    for (const stats of [rows.first, rows.second]) {
      expect(stats.rss_bytes).toBeGreaterThan(0);
      expect(stats.cpu_percent).toBeGreaterThanOrEqual(0);
    }
    expect(rows.first.bytes_in).toBeGreaterThan(0);
    expect(rows.first.bytes_out).toBeGreaterThan(0);
  });
});
