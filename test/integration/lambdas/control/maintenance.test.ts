// The maintenance job against a real database and real gRPC agents: expiry
// with ports and events, stale nodes down and their instances disconnected,
// leaked ports back in the pool, partitions, two runs at once changing each
// row (and writing each event) once, and the Lambda handler's summary line.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'slonik';
import { z } from 'zod';
import { insertInstance } from '../../../../lambdas/control/db/instance-changes.js';
import { getTypeByName } from '../../../support/queries.js';
import { createLogger } from '../../../../core/logger.js';
import {
  runMaintenance,
  type MaintenanceSummary,
} from '../../../../lambdas/control/maintenance.js';
import { issueToken } from '../../../../core/tokens.js';
import { createMaintenanceHandler, HEALTHY_NODES_METRIC } from '../../../../lambdas/maintenance.js';
import {
  createHarness,
  instanceRow,
  portsHeldBy,
  type Harness,
  type TestNode,
} from '../../../support/instance-harness.js';

let h: Harness;
let userId: string;

beforeAll(async () => {
  h = await createHarness({ poolSize: 12 });
  userId = await h.user();
});
afterAll(() => h.close());
// Each test starts from no instances, every port free and every node down
// (a down node's instances would be the next run's work).
beforeEach(async () => {
  await h.db.owner.query(sql.unsafe`DELETE FROM mcp_instances`);
  await h.db.owner.query(
    sql.unsafe`UPDATE port_allocations SET is_available = true, mcp_instance_id = NULL`,
  );
  await h.downAllNodes();
});

const PAST = () => new Date(Date.now() - 60_000);
const STALE_SECONDS = 30;

function run(options: { batchSize?: number } = {}): Promise<MaintenanceSummary> {
  return runMaintenance({
    pool: h.db.app,
    agents: h.registry.forNode,
    config: { nodeStaleSeconds: STALE_SECONDS, stopWaitMs: 2_000, ...options },
    logger: createLogger({ level: 'silent' }),
  });
}

async function makeStale(node: TestNode): Promise<void> {
  await h.db.owner.query(sql.unsafe`
    UPDATE nodes SET last_heartbeat = now() - interval '5 minutes' WHERE id = ${node.node.id}
  `);
}

const EventCount = z.object({ mcp_instance_id: z.string(), n: z.number() });

/** How many events of a type each instance has. */
async function eventCounts(type: string, ids: readonly string[]): Promise<Map<string, number>> {
  const rows = await h.db.owner.any(sql.type(EventCount)`
    SELECT mcp_instance_id, count(*)::int AS n FROM mcp_events
    WHERE event_type = ${type} AND mcp_instance_id = ANY(${sql.array(ids, 'uuid')})
    GROUP BY mcp_instance_id
  `);
  return new Map(rows.map((r) => [r.mcp_instance_id, r.n]));
}

async function freePorts(nodeId: string): Promise<number> {
  return h.db.owner.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT count(*)::int AS n FROM port_allocations WHERE node_id = ${nodeId} AND is_available
  `);
}

describe('expiry', () => {
  it('expires what is past expires_at, frees its port, writes the event and asks the agent to stop it', async () => {
    const live = await h.node({ portRangeStart: 3001, portRangeEnd: 3010 });
    const due = await Promise.all([
      h.seedInstance({ userId, node: live.node, expiresAt: PAST() }),
      h.seedInstance({ userId, node: live.node, status: 'pending', expiresAt: PAST() }),
    ]);
    const notDue = await h.seedInstance({ userId, node: live.node });

    const summary = await run();

    expect(summary.expired).toBe(2);
    expect(summary.agentStops).toEqual({ requested: 2, failed: 0 });
    for (const { id } of due) {
      expect((await instanceRow(h.db.owner, id)).status).toBe('expired');
      expect(await portsHeldBy(h.db.owner, id)).toEqual([]);
      expect(await h.eventTypes(id)).toEqual(['created', 'expired']);
    }
    expect((await instanceRow(h.db.owner, notDue.id)).status).toBe('running');
    expect(await portsHeldBy(h.db.owner, notDue.id)).toHaveLength(1);
    expect(live.fake.calls.stopInstance.map((c) => [c.instanceId, c.reason]).sort()).toEqual(
      due.map(({ id }) => [id, 'STOP_REASON_EXPIRED']).sort(),
    );

    // Nothing is left to do: a second run changes nothing and writes nothing.
    const again = await run();
    expect(again).toMatchObject({ expired: 0, disconnected: 0, nodesDown: 0, portsReleased: 0 });
    expect(
      await eventCounts(
        'expired',
        due.map((d) => d.id),
      ),
    ).toEqual(new Map(due.map((d) => [d.id, 1])));
  });

  it('still expires when the agent is unreachable, counting the failed stop', async () => {
    const gone = await h.node({ portRangeStart: 3101, portRangeEnd: 3105 });
    const instance = await h.seedInstance({ userId, node: gone.node, expiresAt: PAST() });
    await gone.fake.stop();
    const summary = await run();
    expect(summary.expired).toBe(1);
    expect(summary.agentStops).toEqual({ requested: 1, failed: 1 });
    expect((await instanceRow(h.db.owner, instance.id)).status).toBe('expired');
  });
});

describe('stale nodes', () => {
  it('marks a node with a stale heartbeat down and its instances disconnected, and leaves fresh ones', async () => {
    const stale = await h.node({ portRangeStart: 3201, portRangeEnd: 3210 });
    const fresh = await h.node({ portRangeStart: 3201, portRangeEnd: 3210 });
    const onStale = await Promise.all([
      h.seedInstance({ userId, node: stale.node }),
      h.seedInstance({ userId, node: stale.node, status: 'pending' }),
    ]);
    const expiredOnStale = await h.seedInstance({ userId, node: stale.node, status: 'expired' });
    const onFresh = await h.seedInstance({ userId, node: fresh.node });
    await makeStale(stale);

    const summary = await run();

    expect(summary).toMatchObject({ nodesDown: 1, disconnected: 2, healthyNodes: 1 });
    const status = await h.db.owner.oneFirst(
      sql.type(
        z.object({ status: z.string() }),
      )`SELECT status FROM nodes WHERE id = ${stale.node.id}`,
    );
    expect(status).toBe('down');
    for (const { id } of onStale) {
      expect((await instanceRow(h.db.owner, id)).status).toBe('disconnected');
      expect(await portsHeldBy(h.db.owner, id)).toEqual([]);
      expect(await h.eventTypes(id)).toEqual(['created', 'disconnected']);
    }
    // Its expired instance kept its port until now: the leak sweep frees it.
    expect(await portsHeldBy(h.db.owner, expiredOnStale.id)).toEqual([]);
    expect(await h.eventTypes(expiredOnStale.id)).toEqual(['created']);
    expect((await instanceRow(h.db.owner, onFresh.id)).status).toBe('running');
    expect(await freePorts(stale.node.id)).toBe(10);
    // A down node's agent is not called.
    expect(stale.fake.calls.stopInstance).toEqual([]);
  });
});

describe('leaked ports', () => {
  it('frees ports held by no live instance, and only those', async () => {
    const { node } = await h.node({ portRangeStart: 3301, portRangeEnd: 3310 });
    const live = await h.seedInstance({ userId, node });
    const pending = await h.seedInstance({ userId, node, status: 'pending' });
    const deleted = await h.seedInstance({ userId, node });
    const failed = await h.seedInstance({ userId, node, status: 'error' });
    const moved = await h.seedInstance({ userId, node });
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET deleted_at = now() WHERE id = ${deleted.id}`,
    );
    // Claimed for a port the instance no longer has (it was given another one).
    await h.db.owner.query(
      sql.unsafe`UPDATE mcp_instances SET assigned_port = 3310 WHERE id = ${moved.id}`,
    );
    // Held by a row that was removed outright.
    const removed = await h.seedInstance({ userId, node });
    await h.db.owner.query(sql.unsafe`DELETE FROM mcp_instances WHERE id = ${removed.id}`);

    const summary = await run();

    expect(summary.portsReleased).toBe(4);
    expect(await portsHeldBy(h.db.owner, live.id)).toEqual([{ node_id: node.id, port: live.port }]);
    expect(await portsHeldBy(h.db.owner, pending.id)).toHaveLength(1);
    for (const id of [deleted.id, failed.id, moved.id])
      expect(await portsHeldBy(h.db.owner, id)).toEqual([]);
    expect(await freePorts(node.id)).toBe(8);
  });
});

describe('partitions', () => {
  it('creates the coming months’ log and event partitions that are missing', async () => {
    const ahead = new Date();
    ahead.setUTCDate(1);
    ahead.setUTCMonth(ahead.getUTCMonth() + 3);
    const suffix = `${ahead.getUTCFullYear()}_${String(ahead.getUTCMonth() + 1).padStart(2, '0')}`;
    await h.db.owner.query(
      sql.unsafe`DROP TABLE IF EXISTS ${sql.identifier([`mcp_logs_p${suffix}`])}`,
    );
    const summary = await run();
    expect(summary.partitions.created).toEqual([`mcp_logs_p${suffix}`]);
    expect(summary.partitions.dropped).toEqual([]);
  });
});

describe('two runs at once', () => {
  it('split the work: every row changes once and every event is written once', async () => {
    const live = await h.node({ portRangeStart: 3401, portRangeEnd: 3450 });
    const stale = await h.node({ portRangeStart: 3401, portRangeEnd: 3450 });
    const expiring = await Promise.all(
      Array.from({ length: 30 }, () =>
        h.seedInstance({ userId, node: live.node, expiresAt: PAST() }),
      ),
    );
    const stranded = await Promise.all(
      Array.from({ length: 10 }, () => h.seedInstance({ userId, node: stale.node })),
    );
    const leaked = await Promise.all(
      Array.from({ length: 5 }, () => h.seedInstance({ userId, node: live.node, status: 'error' })),
    );
    await makeStale(stale);

    // Small batches: the two runs interleave over many transactions.
    const [a, b] = await Promise.all([run({ batchSize: 4 }), run({ batchSize: 4 })]);

    expect(a.expired + b.expired).toBe(30);
    expect(a.disconnected + b.disconnected).toBe(10);
    expect(a.nodesDown + b.nodesDown).toBe(1);
    expect(a.portsReleased + b.portsReleased).toBe(45);
    expect(
      await eventCounts(
        'expired',
        expiring.map((i) => i.id),
      ),
    ).toEqual(new Map(expiring.map((i) => [i.id, 1])));
    expect(
      await eventCounts(
        'disconnected',
        stranded.map((i) => i.id),
      ),
    ).toEqual(new Map(stranded.map((i) => [i.id, 1])));
    expect(
      await eventCounts(
        'expired',
        leaked.map((i) => i.id),
      ),
    ).toEqual(new Map());
    expect(await freePorts(live.node.id)).toBe(50);
    expect(await freePorts(stale.node.id)).toBe(50);
    // Each expired instance was asked to stop once, by whichever run expired it.
    expect(live.fake.calls.stopInstance).toHaveLength(30);
    expect(new Set(live.fake.calls.stopInstance.map((c) => c.instanceId)).size).toBe(30);
  });
});

describe('the Lambda handler', () => {
  it('runs on a scheduled event and logs one line with the summary and the healthy-node metric', async () => {
    const { node } = await h.node({ portRangeStart: 3501, portRangeEnd: 3505 });
    const type = await getTypeByName(h.db.owner, 'demo');
    const token = issueToken('access');
    const due = await insertInstance(h.db.owner, {
      userId,
      mcpTypeId: type.id,
      apiKeyId: null,
      nodeId: node.id,
      accessTokenHash: token.hash,
      accessTokenPrefix: token.displayPrefix,
      accessUrl: 'http://127.0.0.1:3501/mcp',
      expiresAt: PAST(),
    });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const maintenance = createMaintenanceHandler(
      {
        DATABASE_URL: h.db.appUrl,
        MINIMCP_TLS_CA: h.certs.controlPlane.ca,
        MINIMCP_TLS_CERT: h.certs.controlPlane.cert,
        MINIMCP_TLS_KEY: h.certs.controlPlane.key,
        MINIMCP_METRICS_NAMESPACE: 'MiniMCP/test',
        MINIMCP_DB_POOL_SIZE: '2',
      },
      { logger: createLogger({ destination }) },
    );
    try {
      const summary = await maintenance.handle({
        id: 'evt-1',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        time: '2031-01-01T00:00:00Z',
        detail: {},
      });
      expect(summary.expired).toBe(1);
      expect(summary.healthyNodes).toBe(1);
      expect((await instanceRow(h.db.owner, due.id)).status).toBe('expired');
    } finally {
      await maintenance.close();
    }
    const runLines = lines.filter((l) => l.includes('"maintenance run"'));
    expect(runLines).toHaveLength(1);
    const line = JSON.parse(runLines[0] ?? '{}') as Record<string, unknown>;
    expect(line).toMatchObject({
      msg: 'maintenance run',
      trigger: { id: 'evt-1', time: '2031-01-01T00:00:00Z' },
      summary: { expired: 1, healthyNodes: 1 },
      [HEALTHY_NODES_METRIC]: 1,
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'MiniMCP/test',
            Dimensions: [[]],
            Metrics: [{ Name: HEALTHY_NODES_METRIC, Unit: 'Count' }],
          },
        ],
      },
    });
    // The control plane's key never reaches a log line.
    expect(lines.join('')).not.toContain('PRIVATE KEY');
  });
});
